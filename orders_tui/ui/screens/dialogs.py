"""Small modal dialogs: a one-line prompt, and a confirmation (or a message to close)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from orders_tui.ui.footer import Footer
from orders_tui.ui.text import literal


class Prompt(ModalScreen[str | None]):
    """One line of input (a time to jump to, a file to export to)."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, label: str, value: str = "") -> None:
        super().__init__()
        self.label, self.value = label, value

    def compose(self) -> ComposeResult:
        yield Static(self.label, id="prompt-label")
        yield Input(self.value, id="prompt-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """A question (enter: yes, esc: no), or with `question=False` a text to read."""

    BINDINGS = [Binding("enter,y", "yes", "Go"), Binding("escape,n,q", "no", "Cancel")]

    def __init__(self, text: str, question: bool = True) -> None:
        super().__init__()
        self.text = text
        self.question = question

    def compose(self) -> ComposeResult:
        # The dialog's own line breaks stay line breaks; within each line anything a
        # record or a broker put there is shown literally (the breaks read `\x0a`).
        yield Static(Text("\n").join(literal(line) for line in self.text.split("\n")), id="confirm")
        yield Footer()

    def action_yes(self) -> None:
        self.dismiss(self.question)

    def action_no(self) -> None:
        self.dismiss(False)
