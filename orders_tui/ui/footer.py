"""Textual's Footer, redrawn only when the keys it shows change, and without its leak.

Textual's Footer recomposes on every focus change, and each recompose binds its new keys
to `Footer.compact` without unbinding the old ones (Textualize/textual#6666, open): the
list of watchers grows by a dozen a keypress, and with it the cost of the next one. `tab`
every 50 ms took the dashboard to 1 GB and half a core within 15 minutes.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._shown: tuple | None = None

    def bindings_changed(self, screen: Screen) -> None:
        shown = tuple(
            (key, active.binding.description, active.enabled)
            for key, active in screen.active_bindings.items()
            if active.binding.show
        )
        if shown == self._shown:
            return  # the same keys: nothing to redraw
        self._shown = shown
        super().bindings_changed(screen)

    async def recompose(self) -> None:
        await super().recompose()
        # The keys just replaced still watch `compact`: drop them (see above).
        watchers = getattr(self, "__watchers", {}).get("compact")
        if watchers:
            watchers[:] = [(node, callback) for node, callback in watchers if node.is_attached]
