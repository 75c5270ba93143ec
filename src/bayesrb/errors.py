"""Errors raised for input the pipeline cannot use."""


class BadInputError(ValueError):
    """Input that the pipeline cannot use.

    The message always names the offending file (or config key) and says what is wrong, so that a
    failing Snakemake job reports one clear line.

    Parameters
    ----------
    source : str or os.PathLike
        The file, config key or other input that is at fault.
    problem : str
        What is wrong with it, phrased so that ``"{source}: {problem}"`` reads as a sentence.
    """

    def __init__(self, source, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")
