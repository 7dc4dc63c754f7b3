from orders_tui.cli import main

raise SystemExit(main())
