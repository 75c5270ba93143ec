"""Real image-processing steps: FITS I/O, template alignment, PSF-matched subtraction, detection.

Import the steps from their modules (the package imports none of them eagerly)::

    from bayesrb.imaging.fitsio import read_image, write_difference
    from bayesrb.imaging.align import align_template
    from bayesrb.imaging.subtract import subtract
    from bayesrb.imaging.difference import Difference
    from bayesrb.imaging.detect import detect
"""
