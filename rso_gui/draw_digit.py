"""The digit panel's link to the engine: each run's engine thread classifies what was drawn.

The panel (:class:`~rso_gui.views.digit.DigitPanel`) holds a :class:`~rso_gui.live.digits.DigitProbe`;
here it is registered with every new run (``Runner.publish_extras``), so the engine thread computes both
models' probabilities whenever it publishes a snapshot, and a changed drawing makes a paused run publish
again (``Controller.set_view_options()``). The GUI thread never touches a model.
"""

from __future__ import annotations

from .live.digits import PROBE_KEY


def install_digit(window) -> None:
    """Connect ``window.digit`` (a DigitPanel, if the window has one) to the window's runs."""
    panel = getattr(window, "digit", None)
    if panel is None:
        return
    controller = window.controller

    def attach(_info=None) -> None:
        runner = controller.runner
        if runner is not None and runner.publish_extras.get(PROBE_KEY) is not panel.probe:
            runner.publish_extras[PROBE_KEY] = panel.probe
            controller.set_view_options()  # a paused run publishes again, now with the probabilities

    controller.runReady.connect(attach)
    panel.inputChanged.connect(controller.set_view_options)
    attach()


__all__ = ["install_digit"]
