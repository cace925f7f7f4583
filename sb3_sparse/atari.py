"""Atari-100k (Kaiser et al., 2020): its 26 games, its budget, and the human-normalized score,
``(score - random) / (human - random)``, with the random and human reference scores of Mnih et al.
(2015) as every Atari-100k paper (DER, CURL, DrQ, SPR) and rliable (Agarwal et al., 2021) tabulate
them. The ALE ids themselves come from ale-py (the ``atari`` extra, :func:`sb3_sparse.envs.register_atari_envs`).
Torch-free."""

from __future__ import annotations

import re

#: Agent steps of the Atari-100k benchmark: 100k decisions, 400k frames at the standard frame skip of 4.
ATARI_100K_STEPS = 100_000

#: Random and human reference scores per game (Mnih et al., 2015, as tabulated by rliable).
RANDOM_SCORES: dict[str, float] = {
    "Alien": 227.8, "Amidar": 5.8, "Assault": 222.4, "Asterix": 210.0, "BankHeist": 14.2, "BattleZone": 2360.0,
    "Boxing": 0.1, "Breakout": 1.7, "ChopperCommand": 811.0, "CrazyClimber": 10780.5, "DemonAttack": 152.1,
    "Freeway": 0.0, "Frostbite": 65.2, "Gopher": 257.6, "Hero": 1027.0, "Jamesbond": 29.0, "Kangaroo": 52.0,
    "Krull": 1598.0, "KungFuMaster": 258.5, "MsPacman": 307.3, "Pong": -20.7, "PrivateEye": 24.9, "Qbert": 163.9,
    "RoadRunner": 11.5, "Seaquest": 68.4, "UpNDown": 533.4,
}  # fmt: skip
HUMAN_SCORES: dict[str, float] = {
    "Alien": 7127.7, "Amidar": 1719.5, "Assault": 742.0, "Asterix": 8503.3, "BankHeist": 753.1, "BattleZone": 37187.5,
    "Boxing": 12.1, "Breakout": 30.5, "ChopperCommand": 7387.8, "CrazyClimber": 35829.4, "DemonAttack": 1971.0,
    "Freeway": 29.6, "Frostbite": 4334.7, "Gopher": 2412.5, "Hero": 30826.4, "Jamesbond": 302.8, "Kangaroo": 3035.0,
    "Krull": 2665.5, "KungFuMaster": 22736.3, "MsPacman": 6951.6, "Pong": 14.6, "PrivateEye": 69571.3, "Qbert": 13455.0,
    "RoadRunner": 7845.0, "Seaquest": 42054.7, "UpNDown": 11693.2,
}  # fmt: skip
#: The 26 games of Atari-100k.
ATARI_100K_GAMES = list(RANDOM_SCORES)

_ID_FORMS = (re.compile(r"^ALE/(?P<game>[A-Za-z]+)-v\d+$"), re.compile(r"^(?P<game>[A-Za-z]+?)(NoFrameskip)?-v\d+$"))


def atari_100k_env_id(game: str) -> str:
    """The id of a game without sticky actions and with frame skip left to SB3's ``AtariWrapper`` (``PongNoFrameskip-v4``)."""
    if game not in RANDOM_SCORES:
        raise ValueError(f"{game!r} is not an Atari-100k game; the 26 games: {', '.join(ATARI_100K_GAMES)}")
    return f"{game}NoFrameskip-v4"


def atari_game(env_id: str) -> str | None:
    """The Atari-100k game of an id (``ALE/Pong-v5``, ``PongNoFrameskip-v4``: ``"Pong"``), else ``None``."""
    for form in _ID_FORMS:
        match = form.match(env_id)
        if match is not None:
            game = match.group("game")
            found = {name.lower(): name for name in RANDOM_SCORES}.get(game.replace("_", "").lower())
            if found is not None:
                return found
    return None


def human_normalized_score(env_id: str, score: float) -> float:
    """
    ``(score - random) / (human - random)``: 0 plays like random, 1 like the human reference.

    :param env_id: an id of an Atari-100k game
    :param score: an episodic return
    :raises ValueError: the id is not an Atari-100k game
    """
    game = atari_game(env_id)
    if game is None:
        raise ValueError(f"{env_id!r} is not an id of an Atari-100k game ({', '.join(ATARI_100K_GAMES)})")
    return (score - RANDOM_SCORES[game]) / (HUMAN_SCORES[game] - RANDOM_SCORES[game])
