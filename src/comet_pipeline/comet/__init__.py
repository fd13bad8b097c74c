"""CoMet building blocks: confidence weights, model-uncertainty regulariser, meta-learning step."""
