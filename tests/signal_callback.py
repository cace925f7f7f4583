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
