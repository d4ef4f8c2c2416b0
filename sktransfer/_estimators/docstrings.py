"""The parameter and attribute sections shared by the estimators' numpydoc docstrings."""

_SHARED_PARAMETERS = """
    backbone : str, torch.nn.Module, fitted TransferClassifier / TransferRegressor, list or dict
        A registered backbone name (see :func:`sktransfer.list_backbones`), a Hugging Face
        model directory, ``"hf:<hub id>"`` (local cache only), a module returning
        ``(N, D)`` features (it is copied, never trained in place), or a fitted
        estimator of this library (in :class:`sklearn.frozen.FrozenEstimator` inside a
        search): its fine-tuned backbone, preprocessing, pooling and ``layers`` are the
        starting point, its head is dropped, and it is never modified.
        Several backbones are fused: a list runs each on the same ``X``; a dict maps
        DataFrame columns to backbones (``"passthrough"`` for numeric columns), and
        ``X`` is then a DataFrame or a dict of columns. Each entry may be a
        :class:`sktransfer.Branch` with its own ``strategy``, ``lr``, ``layers``,
        ``trainable_blocks`` or ``pretrained``, also settable as
        ``branch__<name>__<param>`` (``<name>``: the column, or the backbone name in a list).
    pretrained : bool, default=True
        Load the backbone's pretrained weights (never downloaded: they must be on this
        machine). ``False`` initialises randomly.
    strategy : {"full", "partial", "gradual", "head", "lora", "contrastive"}, default="full"
        ``"head"`` freezes the backbone (BatchNorm statistics included) and, without
        augmentation, computes its features once per fit; ``"partial"`` trains the last
        ``trainable_blocks`` blocks; ``"gradual"`` trains the head in the first epoch and
        unfreezes one more block from the top in each following epoch; ``"full"`` trains
        everything. ``"lora"`` freezes the backbone (BatchNorm statistics included) and
        trains low-rank adapters (peft's LoRA, ``pip install 'sktransfer[lora]'``) added
        to the modules the backbone's spec names (``BackboneSpec.lora_targets``: the
        attention projections of text encoders, the linear layers and ungrouped
        convolutions of image backbones; every linear layer and ungrouped convolution of
        a module given as ``backbone``), with the head; backbones that declare no
        targets raise a ``ValueError``. The adapters start at zero (the first step
        sees the pretrained features) and have no dropout.
        ``"contrastive"`` (classifiers) is SetFit's recipe: it first tunes the backbone on
        pairs drawn from the labels (same class: cosine similarity 1, different: 0;
        ``contrastive_iterations`` positive and as many negative pairs per sample) with
        AdamW at ``backbone_lr`` (``None``: 2e-5, SetFit's), then solves the head on the
        tuned backbone's frozen features. Model files store the tuned backbone.
    trainable_blocks : int, default=1
        Blocks trained by ``strategy="partial"``, counted from the output. Ignored by
        the other strategies.
    lora_rank : int, default=8
        Rank of the LoRA adapters (``strategy="lora"``): each adapted layer of weight
        ``(out, in)`` trains ``rank * (in + out)`` parameters. Ignored by the other
        strategies, as scikit-learn ignores parameters that don't apply.
    contrastive_iterations : int, default=20
        ``strategy="contrastive"``: pairs per sample and per kind (SetFit's
        ``num_iterations``), so ``2 * contrastive_iterations * n_samples`` pairs in all.
        Ignored by the other strategies.
    lora_alpha : float, default=None
        LoRA's scale numerator: the adapters' update is multiplied by
        ``lora_alpha / lora_rank``. ``None`` means ``2 * lora_rank`` (16 at the default
        rank), so that changing the rank in a search keeps the update's scale.
        Ignored by the other strategies.
    layers : str, int or list of them, default=None
        The stages of the backbone that feed the head (the knowledge base): stage
        names (see :func:`sktransfer.list_stages`) or negative integers counted from
        the top (``[-2, -1]``), and ``"final"`` (:data:`sktransfer.FINAL_FEATURES`) for
        the backbone's own final features besides them (``["blocks.4", -1, "final"]``).
        Each is pooled (global average pooling for feature maps, the ``pooling`` rule
        for token states) and concatenated. ``None`` uses the backbone's own final
        features (a fitted source's ``layers``); on few photos, ``max_epochs="auto"``
        may add two stages to them (``layers_`` says which; see the small data guide).
    init : fitted estimator, default=None
        A fitted model on the same ``X`` (a TransferClassifier, or a Pipeline such as
        TF-IDF + LogisticRegression) whose output this model corrects: classifiers add
        the head's logits to its log-probabilities (``predict_log_proba``, else
        ``decision_function``; its ``classes_`` must match), regressors add the head's
        output to its ``predict``. The correction starts at zero, so before training
        the model predicts exactly what ``init`` predicts. It runs once per fit and
        once per prediction. Wrap it in :class:`sklearn.frozen.FrozenEstimator` inside
        a search. ``save_pretrained`` and ``sktransfer.export_onnx`` keep an ``init``
        that is a TransferClassifier or TransferRegressor (in ``init/``), and refuse
        any other.
    init_cv : int, cross-validation generator, iterable or None, default=None
        Where the training rows' ``init`` outputs come from. ``None``: the fitted
        ``init`` itself. Otherwise, as in scikit-learn's stacking, out-of-fold
        predictions of clones of ``init`` refitted on this ``y`` with this splitting
        (``5`` is 5-fold): use it when ``init`` was fitted on these same rows, so the
        correction learns residuals like those it meets on new data. Predictions always
        use the fitted ``init``.
    lr : float, default=1e-3
        Learning rate of the head.
    backbone_lr : float, default=None
        Learning rate of the backbone (of the LoRA adapters with ``strategy="lora"``);
        ``None`` means ``lr / 10`` for pretrained text encoders fine-tuned by the other
        strategies, and ``lr`` for everything else (LoRA adapters included).
    layer_decay : float in (0, 1], default=None
        Layer-wise learning-rate decay: the top block trains at ``backbone_lr``, the one
        below at ``backbone_lr * layer_decay``, and so on down.
    head_epochs : int or "auto", default="auto"
        Epochs of training the head alone on the frozen backbone's features before the
        backbone is fine-tuned (linear probing, then fine-tuning). A random head's first
        gradients wear down pretrained features that already fit the task; a trained
        head keeps them where they fit. The probe reads its features from the feature
        cache, so it costs about one backbone pass. ``"auto"``: a probe solved to
        convergence (10 L-BFGS epochs at most) whenever the head solver is
        ``"lbfgs"``, none with ``head_solver="optimizer"`` or under ``accelerator=``.
        Ignored by ``strategy="head"``, ``"contrastive"`` (which solves its head after
        tuning the body) and fused models.
    wise_alpha : float in [0, 1] or "auto", default="auto"
        Weight-space ensemble of fine-tuning (WiSE-FT, Wortsman et al. 2022): when
        training ends, every weight becomes ``(1 - wise_alpha) * start + wise_alpha *
        fine-tuned``, where ``start`` is the weights fine-tuning began from (after
        ``head_epochs``: the pretrained backbone with the probe's head). ``1.0`` keeps the
        fine-tuned weights; ``0.0`` returns the start. One model comes out, so predicting
        costs the same; the fit holds one extra copy of the weights in memory. ``"auto"``:
        0.25 after a ``head_epochs`` probe when the training rows fit in one batch (up to
        32 rows at ``batch_size=32``: ``max_epochs="auto"`` then makes 50 passes over the
        same rows), 1.0 otherwise (without a probe the start's head is random); the
        README's "Small data" says what was measured. Ignored by ``strategy="head"`` and
        ``"contrastive"``, whose backbone doesn't train with the head. With ``patience``,
        the interpolation ends at the best epoch's weights.
    head_solver : {"lbfgs", "optimizer"}, default="lbfgs"
        How a head on frozen features is trained (``strategy="head"`` without
        augmentation, the ``head_epochs`` probe, fused models whose branches are all
        frozen). ``"lbfgs"`` solves it to convergence, as scikit-learn's
        ``LogisticRegression`` and ``Ridge`` do: full-batch L-BFGS with a strong Wolfe
        line search on the loss plus an L2 penalty set by ``C``, up to 20 iterations per
        epoch (``max_epochs`` epochs, so 200 with ``"auto"``); ``optimizer``, ``lr``,
        ``batch_size`` and the schedule don't apply to it. ``"optimizer"`` trains the head
        like fine-tuning, with those settings, for ``max_epochs`` passes; so does a head
        trained under ``accelerator=`` (Accelerate steps optimizers without the closure
        L-BFGS needs).
    C : float, default=1.0
        Inverse L2 strength of a head solved by L-BFGS, as ``LogisticRegression``'s ``C``:
        the head minimises the mean loss plus ``||W||^2 / (2 C n)`` (n training rows;
        the bias is not penalised; ``||W||^2 / (C n)`` for two classes, whose softmax
        head has two rows where LogisticRegression has one), so with the same features a classifier's head is
        ``LogisticRegression(C=C)`` (softmax; one binary problem per label for
        multi-label ``y``) and a regressor's head is ``Ridge(alpha=1 / C)``.
    lr_schedule : {"cosine", "onecycle", "constant"}, default="cosine"
        Per-step schedule: linear warmup then cosine decay to zero, or warmup then
        constant (transformers' schedules); or torch's ``OneCycleLR``. Its length is
        read from the training iterator, ``net_params`` included.
    warmup_fraction : float in [0, 1), default=0.1
        Share of all training steps spent warming up (``"cosine"``, ``"constant"``).
    max_epochs : int or "auto", default="auto"
        Passes over the training rows. ``"auto"`` sizes the budget in optimizer steps:
        10 passes, and at least 50 steps however few the rows (16 samples in batches of
        32 make one step a pass: 50 passes); a head solved by L-BFGS gets 10 epochs. An
        integer is taken as given. The warmup is ``warmup_fraction`` of the steps.
        Small image data: on at most 128 rows, ``"auto"`` doesn't fine-tune a backbone
        with pretrained weights from the registry (or a fitted estimator's). The fitted
        model is the ``head_epochs`` probe on the unchanged backbone, solved on the photos
        and on 8 random crops and flips of each (``net_.history`` is then empty). On
        flowers12 fine-tuning lost to the frozen features there, and the views gained 2.5
        points with one photo per species (the user guide's "Small data" says what was
        measured). An integer ``max_epochs`` fine-tunes as given.
    batch_size : int, default=32
    optimizer : {"adamw", "adam", "sgd"} or torch.optim.Optimizer subclass, default="adamw"
    weight_decay : float, default=0.01
    validation_fraction : float in (0, 1), default=None
        Held-out share of the training data, reported as ``valid_loss`` in
        ``net_.history`` with a metric (skorch's ``EpochScoring``): ``valid_acc`` for
        classifiers, ``valid_f1_macro`` when the classes are unbalanced (the largest has
        more than 1.5 times the samples of the smallest), ``valid_r2`` for regressors
        (none for multi-label targets or ``init=``). ``None`` means no split, or 0.1
        when ``patience`` is set.
    patience : int, default=None
        Stop after this many epochs without a better ``early_stopping_metric`` and
        restore the best epoch's weights.
    early_stopping_metric : {"loss", "score"}, default="loss"
        What ``patience`` watches: the validation loss, or the validation metric above
        (higher is better).
    augment : {"default", "mixup", "cutmix", "word_dropout", "span_deletion"}, callable or None, default=None
        Training-time augmentation. Images: ``"default"`` is RandomResizedCrop,
        horizontal flips and TrivialAugmentWide; ``"mixup"`` and ``"cutmix"`` add
        torchvision's batch-level MixUp or CutMix to it (classifiers); a callable is
        applied to each resized uint8 image tensor ``(3, H, W)``, a copy that it may
        modify in place (it never shares memory with ``X``). Texts: ``"word_dropout"``
        (also ``"default"``) deletes each word with probability 0.1, ``"span_deletion"``
        one span of up to 20 % of the words, both seeded by ``random_state``; a callable
        maps each training text (a str) to a str. Tabular backbones take no augmentation.
    image_size : int, default=None
        Input size for image backbones; ``None`` uses the pretrained configuration.
    max_length : int, default=None
        Token limit for text backbones (longer texts are truncated, or split into
        windows of this size with ``long_text="chunk"``); ``None`` uses the backbone's
        default.
    pooling : {"auto", "mean", "cls"}, default="auto"
        Token pooling for text backbones; ``"auto"`` is mean pooling.
    long_text : {"truncate", "chunk"}, default="truncate"
        What text backbones do with texts longer than ``max_length`` tokens.
        ``"truncate"`` keeps the first ``max_length``. ``"chunk"`` splits them into
        overlapping windows of ``max_length`` tokens (neighbours share a quarter
        window, transformers' ``stride``), runs each window through the backbone,
        pools each window's tokens by ``pooling`` and then the windows of a text by
        ``chunk_pooling``, for fitting, fine-tuning and prediction alike. A text keeps
        at most 16 windows (about ``12 * max_length`` tokens); each window costs one
        backbone pass, so a batch of long texts takes up to 16 times the time and
        activation memory of a truncated one. Texts that fit in one window give the
        same features either way. A fitted source (``backbone=`` an estimator) does not
        pass its own setting on. Other backbones raise a ``ValueError`` unless it is
        ``"truncate"``.
    chunk_pooling : {"mean", "max"}, default="mean"
        With ``long_text="chunk"``: how a text's window features become one row, their
        mean or their elementwise maximum. Ignored with ``"truncate"``.
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA when available, else the CPU.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling and the validation split; seeded CPU fits are
        reproducible whatever ran before in the process, for a given number of torch
        threads (search workers with ``n_jobs > 1`` get fewer, and CPU backward passes
        add up in another order with another thread count). Frozen features reused from
        the cache may differ from fresh ones in float32 rounding. The global torch RNG is
        left as it was.
    verbose : int, default=0
        ``1`` or more prints a line per epoch and shows progress bars on stderr: one over
        the whole fit (epochs x batches), and one per long step (extracting frozen
        features, predicting). Bars show only when stderr is a terminal (or a Jupyter
        notebook); ``SKTRANSFER_PROGRESS=1`` shows them anyway (a log file, CI), ``0`` never.
    feature_cache : "memory", path, FeatureStore or None, default="memory"
        Where frozen-backbone features (``strategy="head"``, no augmentation) are
        shared across fits: a process-wide in-memory store bounded by
        ``SKTRANSFER_FEATURE_CACHE_BYTES`` (2 GiB by default), a directory (an SQLite
        file shared by the processes of one machine, for ``n_jobs > 1``; keep it off
        network file systems), a store object with ``get_many`` and ``put_many``
        (:class:`FeatureStore`; :class:`FsspecFeatureStore` shares rows between
        the machines of a Dask cluster), or ``None`` to recompute.
        Keys cover the backbone's weights, preprocessing and each sample's content.
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        ``"auto"`` is bf16 autocast on CUDA devices that support it, fp16 with a
        GradScaler on other CUDA devices, and fp32 on the CPU.
    compile : bool, default=False
        Compile the module with ``torch.compile`` (skorch's ``compile``).
    net_params : dict, default=None
        Further skorch settings, merged last, e.g. ``{"iterator_train__num_workers": 2}``.
        Its ``callbacks`` are added to the estimator's own (a ``(name, callback)`` named
        like one of ours replaces it).
    fusion : {"concat", "gated"}, default="concat"
        With several backbones: concatenate their features, or first scale each
        branch's features by a learned gate in (0, 1) computed from them.
    remainder : {"error", "drop"}, default="error"
        With a column mapping: columns of ``X`` that are not mapped raise an error, or
        are dropped (as in :class:`sklearn.compose.ColumnTransformer`).
    accelerator : accelerate.Accelerator or None, default=None
        Train data-parallel with Hugging Face Accelerate (skorch's
        :class:`~skorch.hf.AccelerateMixin`), e.g. on several GPUs under
        ``accelerate launch``: every process runs the same script and calls ``fit``;
        each trains on its shard of every batch and the gradients are averaged. The
        Accelerator places the model (leave ``device="auto"``) and owns mixed
        precision (leave ``precision="auto"``; pass ``Accelerator(mixed_precision="bf16")``).
        ``net_.history`` holds the losses merged over processes, the same in every
        process. After the fit the model is unwrapped: ``device_`` is where this
        process's copy of the weights is, and ``predict`` runs in the process that
        calls it (no collective call; every process holds the same model).
        By default each process takes ``batch_size`` samples per step; with
        ``Accelerator(dataloader_config=DataLoaderConfiguration(split_batches=True))``
        ``batch_size`` is the global batch, split between the processes. Not with
        ``strategy="gradual"``. Clones (:func:`~sklearn.base.clone`, searches)
        share the Accelerator; pickles and :meth:`save_pretrained` leave it out.
"""

_SHARED_ATTRIBUTES = """
    net_ : skorch.NeuralNet
        The trained network; ``net_.module_`` is the :class:`~sktransfer._nn.module.TransferModule`
        and ``net_.history`` its learning curves.
    spec_ : BackboneSpec
        The backbone's spec.
    layers_ : list of str or None
        The stages that feed the head, by name (``"final"``: the final features);
        ``None`` for the final features alone.
    init_ : estimator or None
        The fitted model whose output is corrected.
    adapter_ : object
        Validates and feeds inputs (image transforms, tokenizer or scaler).
    n_outputs_ : int
    n_samples_fit_ : int
        The number of training samples ``fit`` was given (a validation split included).
    n_features_in_ : int
        Only for tabular backbones.
"""
