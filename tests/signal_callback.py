"""A callback that sends its own process a signal at one agent step, as Ctrl-C or Slurm would (entry key ``callback``)."""

import os
import signal

from stable_baselines3.common.callbacks import BaseCallback


class SignalAtStep(BaseCallback):
    """
    Send this process ``signal_name`` when training reaches ``step`` agent steps, once: the marker
    file it leaves keeps a resumed run (from an earlier checkpoint) going.

    :param step: the agent step
    :param marker: a file that says the signal was sent
    :param signal_name: ``"SIGINT"`` or ``"SIGTERM"``
    """

    def __init__(self, step: int, marker: str, signal_name: str = "SIGTERM") -> None:
        super().__init__()
        self.step, self.marker, self.signal_number = step, marker, signal.Signals[signal_name]

    def _on_step(self) -> bool:
        if self.num_timesteps == self.step and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), self.signal_number)
        return True


class SignalAtSteps(BaseCallback):
    """
    Send this process a signal at each of ``steps`` agent steps, once each (a marker file per
    step keeps a resumed run going past it): ``signals`` names them in turn, cycling.

    :param steps: agent steps to stop at
    :param marker_dir: where the markers go
    :param signals: signal names (``"SIGTERM"``, ``"SIGINT"``, ``"SIGKILL"``), used in turn
    """

    def __init__(self, steps: list[int], marker_dir: str, signals: list[str] | None = None) -> None:
        super().__init__()
        self.steps, self.marker_dir = list(steps), marker_dir
        self.signals = [signal.Signals[name] for name in (signals or ["SIGTERM"])]

    def _on_step(self) -> bool:
        for index, step in enumerate(self.steps):
            marker = os.path.join(self.marker_dir, f"stopped-at-{step}")
            if self.num_timesteps >= step and not os.path.exists(marker):
                open(marker, "w").close()
                os.kill(os.getpid(), self.signals[index % len(self.signals)])
                break
        return True
