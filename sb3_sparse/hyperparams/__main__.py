"""Print the path of the package's hyperparameter file of an algorithm: ``python -m sb3_sparse.hyperparams sac``."""

import argparse

from sb3_sparse.hyperparams import ALGORITHMS, hyperparams_path

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("algo", choices=list(ALGORITHMS))
print(hyperparams_path(parser.parse_args().algo))
