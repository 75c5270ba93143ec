"""One vocabulary for every part: the label kinds, the classes and their display names.

A label kind (the ``kind`` column of labels, shards and the data set) says where a label came from; a class (the
``label`` column) is what a classifier predicts. Figures key their colours by these names; nothing else spells
them out. The context classifier's classes (bogus, variable star, nuclear transient, supernova, orphan, minor
planet) are named here too, with the simulator's truth kinds that each one stands for.
"""

# ----------------------------------------------------------------------------------------------- classes

#: The real/bogus classes of the ``label`` column (-1: unlabelled).
BOGUS, REAL, UNLABELLED = 0, 1, -1
#: Display name of each class, indexed by its value.
CLASS_NAMES: tuple[str, str] = ("bogus", "real")

# ----------------------------------------------------------------------------------------------- label kinds

#: A detection of a predicted minor planet (automatic label, real).
MINOR_PLANET = "mp"
#: A random detection clear of everything that could be real (automatic label, bogus).
RANDOM_BOGUS = "randjunk"
#: A minor planet's signal placed on a catalogued galaxy (augmentation, real).
SYNTHETIC_TRANSIENT = "syntransient"
#: A minor planet's signal added to (or, fading, taken from) a catalogued star: stellar variability (augmentation,
#: real).
SYNTHETIC_VARIABLE = "synvariable"
#: A galaxy with nothing added (augmentation, bogus).
GALAXY_RESIDUAL = "glxresid"
#: A candidate only a human labelled, with no kind given.
HUMAN = "human"
#: Evaluation-only transients injected by the simulator and labelled from its truth start with this prefix.
INJECTED_PREFIX = "injected_"
INJECTED_SN, INJECTED_NUCLEAR, INJECTED_HOSTLESS = (f"{INJECTED_PREFIX}{k}" for k in ("sn", "nuclear", "hostless"))

#: The kinds of the automatic labels.
AUTOMATIC_KINDS: tuple[str, ...] = (MINOR_PLANET, RANDOM_BOGUS)
#: The kinds of the augmentation's rows.
AUGMENTED_KINDS: tuple[str, ...] = (SYNTHETIC_TRANSIENT, SYNTHETIC_VARIABLE, GALAXY_RESIDUAL)
#: The evaluation-only kinds.
INJECTED_KINDS: tuple[str, ...] = (INJECTED_SN, INJECTED_NUCLEAR, INJECTED_HOSTLESS)
#: Real kinds of the training fields.
TRAINING_REAL_KINDS: tuple[str, ...] = (MINOR_PLANET, SYNTHETIC_TRANSIENT, SYNTHETIC_VARIABLE)
#: Every kind, in the order figures and tables show them.
KIND_ORDER: tuple[str, ...] = (MINOR_PLANET, SYNTHETIC_TRANSIENT, SYNTHETIC_VARIABLE, RANDOM_BOGUS, GALAXY_RESIDUAL,
                               HUMAN, *INJECTED_KINDS)

# ----------------------------------------------------------------------------------------------- context classes

#: The context classifier's classes, in the order of its outputs: bogus, variable star, nuclear transient,
#: supernova, orphan (no host) and minor planet.
CONTEXT_CLASSES: tuple[str, ...] = ("bs", "vs", "nt", "sn", "or", "mp")
#: Display name of each context class.
CONTEXT_CLASS_NAMES: dict[str, str] = {
    "bs": "bogus", "vs": "variable star", "nt": "nuclear transient", "sn": "supernova", "or": "orphan",
    "mp": "minor planet",
}
#: The context class that means bogus; P(real) reconstructed from the context classifier is 1 - P(bs).
CONTEXT_BOGUS = "bs"

# ----------------------------------------------------------------------------------------------- simulator truth

#: Kinds of the simulator's truth table that are real astrophysical sources (every other truth kind is bogus).
REAL_TRUTH_KINDS: frozenset[str] = frozenset({MINOR_PLANET, "sn", "nuclear", "hostless", "variable_star", "agn"})
#: The truth kind of each evaluation-only injected transient and the label kind it becomes.
INJECTED_FROM_TRUTH: dict[str, str] = {"sn": INJECTED_SN, "nuclear": INJECTED_NUCLEAR, "hostless": INJECTED_HOSTLESS}
#: The context class of each real truth kind; every other truth kind (artefacts, unmatched noise) is ``bs``.
CONTEXT_CLASS_OF_TRUTH: dict[str, str] = {
    "variable_star": "vs", "agn": "nt", "nuclear": "nt", "sn": "sn", "hostless": "or", MINOR_PLANET: "mp",
}
