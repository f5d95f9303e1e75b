"""The method sets of the three papers' experiments, in their figures' order: one
place for each, shared by the stages, the claims ledger and the report (stdlib only,
so the pure-pandas modules need not import the saliency package)."""

# Budding et al. 2021, Figures 1 and 2.
BUDDING_METHODS = ("gradient", "lrp_z", "lrp_alpha2_beta1", "deep_taylor", "guided_backprop", "deconvnet",
                   "patternnet", "patternattribution")
# Tomsett et al. 2020's saliency methods (the Sobel edge map is their extra "method").
TOMSETT_METHODS = ("sensitivity", "gradient_x_input", "deep_taylor", "deep_shap")
# Arun et al. 2021's eight (PROTOCOLS B2).
ARUN_METHODS = ("gradient", "smoothgrad", "integrated_gradients", "smooth_ig", "grad_cam", "xrai",
                "guided_backprop", "guided_grad_cam")
