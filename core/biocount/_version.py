"""Versions: the package's own, and the plugin API's, which changes far less often."""

__version__ = "0.1.0"

#: The plugin API version this host implements. Plugins declare the version they target in their
#: specs; a plugin whose major version differs is refused (see docs/plugins.md, "Versioning").
PLUGIN_API = "1.6"  # 1.1: Forecaster protocol with Capabilities and reports; 1.2: Capabilities.subsets, local_fits;
# 1.3: Forecast.sd (a normal predictive distribution), scored with closed-form CRPS and the log score;
# 1.4: ModalityData.units (how encoded values map back to the data's units); 1.5: Aligned.last_target;
# 1.6: biocount.Counts public (a plugin's count distribution, Forecast.counts)
SUPPORTED_PLUGIN_API_MAJORS = (1,)
