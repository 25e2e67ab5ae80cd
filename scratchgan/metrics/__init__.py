"""Evaluation metrics: Parzen log-likelihood, Inception Score, Fréchet distance,
InfoGAN code accuracy, VAE ELBO / importance-weighted log-likelihood, toy mode coverage.

The MNIST classifier (:mod:`scratchgan.metrics.classifier`) and its weights are loaded on
first use. Importing this package registers every study evaluator
(:mod:`scratchgan.metrics.evaluators`) with its family's module (those of the MNIST
paper studies are in :mod:`scratchgan.metrics.standard`).
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
from .evaluators import EVALUATORS, EvalContext, evaluator, get_evaluator
from . import standard  # noqa: F401  (registers the evaluators of the MNIST paper studies)
from .sampling import generate_samples
from . import lenet_scores  # noqa: F401  (registers the LeNet IS/FD evaluators)
from . import translation  # noqa: F401  (registers the image-to-image evaluators)
from . import onenn  # noqa: F401  (registers the 1-NN and reconstruction evaluators)
from . import critic  # noqa: F401  (registers the critic diagnostics evaluator)

# the families' evaluators (scratchgan.metrics.evaluators.EVALUATORS) register on import
from . import knn, semisupervised  # noqa: F401
from .knn import linear_probe_accuracy, nearest_neighbour_accuracy  # noqa: F401

__all__ = ["DEFAULT_SIGMAS", "evaluate_parzen", "logmeanexp", "logsumexp",
           "parzen_log_likelihood", "parzen_log_prob_multi", "parzen_log_prob",
           "parzen_select_sigma", "feature_statistics", "frechet_distance",
           "frechet_distance_from_features", "inception_score", "inception_score_from_log_probs",
           "categorical_code_accuracy", "confusion_matrix", "mode_statistics",
           "bernoulli_log_prob", "elbo_per_example", "evaluate_vae", "gaussian_kl_standard",
           "gaussian_log_prob", "iw_log_likelihood_per_example", "LinearSoftmax",
           "beta_vae_metric", "pair_features", "mode_statistics_from_modes",
           "stacked_mnist_modes", "sliced_wasserstein_distance",
           "EVALUATORS", "EvalContext", "evaluator", "get_evaluator", "generate_samples",
           "linear_probe_accuracy", "nearest_neighbour_accuracy"]
