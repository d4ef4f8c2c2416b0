"""The order of the example gallery: from a first model to the more specialised tasks."""

ORDER = [
    "plot_quickstart.py",
    "plot_flowers_frozen_vs_finetuned.py",
    "plot_vader_regression.py",
    "plot_text_classification_cv.py",
    "plot_calibration.py",
    "plot_fusion_dataframe.py",
    "plot_knowledge_reuse_init.py",
    "plot_residual_tfidf.py",
    "plot_stages_search.py",
]


class ExampleOrder:
    """sphinx-gallery's ``within_subsection_order``: the examples above in that order, others after them by name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        return (ORDER.index(filename), "") if filename in ORDER else (len(ORDER), filename)

    def __repr__(self):
        return f"<{self.__class__.__name__}>"
