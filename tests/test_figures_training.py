"""The training-curves figure of one network and of an ensemble's members."""

import json

import numpy as np
import pytest

from bayesrb.figures.style import NO_DATA_TEXT
from bayesrb.figures.training import PANELS, training_curves, write_training_curves


def history(val_losses):
    """One network's history with the given validation losses."""
    return [{"epoch": epoch + 1, "train_loss": 1.0 / (epoch + 1), "val_loss": loss, "val_accuracy": 1.0 - loss}
            for epoch, loss in enumerate(val_losses)]


def data_lines(ax):
    return [line for line in ax.lines if line.get_marker() == "o"]


def test_one_network_gives_one_curve_per_panel_and_its_kept_epoch():
    fig = training_curves([history([0.5, 0.3, 0.4])], title="x")
    assert [ax.get_title() for ax in fig.axes] == [title for _, _, title in PANELS]
    for ax, (key, _, _) in zip(fig.axes, PANELS, strict=True):
        (line,) = data_lines(ax)
        np.testing.assert_allclose(line.get_ydata(), [entry[key] for entry in history([0.5, 0.3, 0.4])])
    assert [text.get_text() for text in fig.axes[1].get_legend().get_texts()] == ["kept epoch 2"]


def test_an_ensemble_gives_one_curve_per_member(tmp_path):
    members = [history([0.5, 0.3]), history([0.4, 0.45, 0.5])]
    fig = training_curves(members)
    assert all(len(data_lines(ax)) == 2 for ax in fig.axes)
    labels = [text.get_text() for text in fig.axes[1].get_legend().get_texts()]
    assert labels == ["member 1: kept epoch 2", "member 2: kept epoch 1"]
    (tmp_path / "history.json").write_text(json.dumps({"members": members}))
    write_training_curves(tmp_path / "history.json", tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("histories", [[], [[]]])
def test_no_epochs_give_no_data_panels(histories):
    fig = training_curves(histories)
    assert all(any(text.get_text() == NO_DATA_TEXT for text in ax.texts) for ax in fig.axes)
