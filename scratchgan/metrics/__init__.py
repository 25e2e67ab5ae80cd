"""Evaluation metrics: Parzen log-likelihood, Inception Score, Fréchet distance,
InfoGAN code accuracy, VAE ELBO / importance-weighted log-likelihood, toy mode coverage.

The MNIST classifier (:mod:`scratchgan.metrics.classifier`) is imported lazily,
since it pulls in the layers; everything imported here is plain NumPy/CuPy/SciPy.
See ``docs/metrics.md`` for the protocols.
"""
from .parzen import (DEFAULT_SIGMAS, evaluate_parzen, logmeanexp, logsumexp, parzen_log_likelihood, parzen_log_prob_multi,
                     parzen_log_prob, parzen_select_sigma)
from .scores import (feature_statistics, frechet_distance, frechet_distance_from_features,
                     inception_score, inception_score_from_log_probs)
from .codes import categorical_code_accuracy, confusion_matrix
from .toy import mode_statistics
from .likelihood import (bernoulli_log_prob, elbo_per_example, evaluate_vae, gaussian_kl_standard,
                         gaussian_log_prob, iw_log_likelihood_per_example)
from .disentanglement import LinearSoftmax, beta_vae_metric, pair_features
from .modes import mode_statistics_from_modes, stacked_mnist_modes
from .swd import sliced_wasserstein_distance
# the families' evaluators (scratchgan.metrics.evaluators.EVALUATORS) register on import
from . import knn, semisupervised  # noqa: E402,F401
from .knn import linear_probe_accuracy, nearest_neighbour_accuracy  # noqa: E402,F401
