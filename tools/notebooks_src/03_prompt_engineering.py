"""Source of notebooks/03_prompt_engineering.ipynb (build it with: python tools/make_notebooks.py)."""
# ruff: noqa: B018, E402

# %% [markdown]
# # Prompt engineering, measured
#
# A zero-shot classifier is nothing but one text embedding per class, so the words you choose *are*
# the classifier. The CLIP paper found that wrapping class names in templates ("a photo of a {}.")
# and averaging the embeddings of many templates (*ensembling*) each add accuracy. Here we measure,
# live, on the bundled model and freshly generated shapes:
#
# 1. a single template vs each of OpenAI's 80 templates alone vs their ensemble;
# 2. an A/B comparison of two prompt sets, class by class;
# 3. the hardest task: 48 colour-shape classes, on combinations the model saw in training and on
#    combinations it never saw.
#
# Every number below is computed when the notebook runs; nothing is copied from elsewhere.

# %%
import os

import numpy as np
import pandas as pd
import plotly.express as px

import clipviz

# The test suite sets CLIPVIZ_FAST=1 to keep its run short; the default is a more precise estimate.
FAST = os.environ.get("CLIPVIZ_FAST") == "1"
N = 300 if FAST else 2000

model = clipviz.load_model("clipviz-shapes")
data = clipviz.datasets.shapes(N, seed=2024)
emb = clipviz.embed_images(model, data.to_imageset(label="shape"), progress=False)
SHAPES = clipviz.datasets.SHAPES
print(f"{len(emb)} images, {len(SHAPES)} classes: {', '.join(SHAPES)}")

# %% [markdown]
# ## 1. One template, each template, all templates
#
# `embed_prompts` keeps the embedding of every template (`per_template`, shape classes x templates x
# dim), so every template can be scored alone without calling the model again; its `vectors` are
# the ensemble (the normalised mean over templates).


# %%
def acc1(prompt_vectors, classnames=SHAPES, images=emb):
    """Top-1 accuracy of a (C, D) array of class vectors."""
    pred = clipviz.zero_shot(images, prompt_vectors, classnames=classnames)
    return clipviz.evaluate(pred).acc1


openai80 = clipviz.embed_prompts(model, SHAPES, templates="openai_imagenet")
single = clipviz.embed_prompts(model, SHAPES, templates="single")
simple = clipviz.embed_prompts(model, SHAPES, templates="simple")
bare = clipviz.embed_prompts(model, SHAPES, templates=["{}"])

per_template = pd.DataFrame(
    {
        "template": openai80.templates,
        "acc1": [acc1(openai80.per_template[:, t]) for t in range(len(openai80.templates))],
    }
).sort_values("acc1", ascending=False)

summary = pd.Series(
    {
        "class name alone ('{}')": acc1(bare.vectors),
        "single template ('a photo of a {}.')": acc1(single.vectors),
        f"'simple' set, ensembled ({len(simple.templates)} templates)": acc1(simple.vectors),
        "OpenAI 80, worst single template": per_template.acc1.min(),
        "OpenAI 80, median single template": per_template.acc1.median(),
        "OpenAI 80, best single template": per_template.acc1.max(),
        "OpenAI 80, ensembled": acc1(openai80.vectors),
    },
    name="top-1 accuracy",
)
summary.to_frame().style.format("{:.1%}")

# %%
fig = px.histogram(
    per_template,
    x="acc1",
    nbins=30,
    title="Each of OpenAI's 80 templates alone (bars) vs their ensemble (line)",
    labels={"acc1": "top-1 accuracy, shape (6-way)"},
)
fig.add_vline(x=summary.iloc[-1], line_dash="dash", annotation_text="ensemble")
fig.show()
pd.concat([per_template.head(5), per_template.tail(5)]).style.format({"acc1": "{:.1%}"})

# %% [markdown]
# How to read this: the spread of the histogram is what one unlucky wording can cost, and the
# dashed line is what averaging all 80 buys. In the CLIP paper, templates plus ensembling added
# almost 5 points on ImageNet for a model trained on varied web captions. A model trained on a
# narrow caption style can learn to look only at the class word and ignore its surroundings; then
# the histogram is a narrow spike and the choice of template hardly matters. Where does the
# ensemble rank among the single templates, here?

# %%
ensembled = summary["OpenAI 80, ensembled"]
better = int((per_template.acc1 > ensembled).sum())
spread = per_template.acc1.max() - per_template.acc1.min()
print(
    f"ensemble {ensembled:.1%}: {better} of 80 single templates score higher; the default "
    f"single template scores {summary.iloc[1]:.1%}; best minus worst template: {spread:.1%}"
)

# %% [markdown]
# ## 2. A/B: two prompt sets, class by class
#
# The words of the class names usually matter more than the words around them. Set A uses the
# dataset's own vocabulary; set B uses everyday synonyms a person might type ("disc" for circle,
# "box" for square, ...), keeping "star" and "hexagon" as controls. `Metrics.compare` lines up
# per-class accuracy and the difference (B - A); its last row is the overall top-1 accuracy.
#
# B's prompts differ from the true labels, so we score B's vectors under A's class names
# (`zero_shot(..., classnames=SHAPES)`): prompt *i* of B stands for class *i*.

# %%
set_a = clipviz.embed_prompts(model, SHAPES, templates="single")
names_b = ["disc", "box", "pyramid", "star", "hexagon", "plus sign"]
set_b = clipviz.embed_prompts(model, names_b, templates="single")
metrics_a = clipviz.evaluate(clipviz.zero_shot(emb, set_a))
metrics_b = clipviz.evaluate(clipviz.zero_shot(emb, set_b.vectors, classnames=SHAPES))
gains = metrics_a.compare(metrics_b, names=("A", "B"))
gains.insert(0, "prompt_B", [*names_b, ""])
gains.style.format({"accuracy_A": "{:.1%}", "accuracy_B": "{:.1%}", "difference": "{:+.1%}"})

# %%
px.bar(
    gains.drop(index="(all) acc1").reset_index(),
    x="class",
    y="difference",
    hover_data=["prompt_B"],
    title="Per-class change from prompt set A to B (top-1 accuracy)",
    labels={"difference": "accuracy B - A"},
).show()

# %% [markdown]
# An overall number hides which classes moved: read the bars, not only the last row. A model
# only understands words it met in training; this one read captions with "circle", "square" and
# "cross", so a synonym may point anywhere. The same holds, more mildly, for web-trained CLIPs and
# rare or ambiguous class names. The confusion matrices say where the errors go (rows are the
# true class, columns the prediction):


# %%
def worst_confusion(metrics):
    off_diagonal = metrics.confusion.to_numpy().copy()
    np.fill_diagonal(off_diagonal, 0)
    t, p = np.unravel_index(off_diagonal.argmax(), off_diagonal.shape)
    names = list(metrics.confusion.index)
    return f"{names[t]} taken for {names[p]} ({off_diagonal[t, p]} images)"


print("most common mistake with A:", worst_confusion(metrics_a))
print("most common mistake with B:", worst_confusion(metrics_b))
metrics_b.confusion

# %% [markdown]
# ## 3. Composition: 48 colour-shape classes, seen and never seen
#
# One eighth of the colour-shape combinations (`clipviz.datasets.HELD_OUT`, e.g. a red star) never
# appeared in the model's training data. A prompt like "a photo of a red star." still works if the
# model composes "red" and "star", which CLIP-style models do only partly. We score the same 48
# prompts on images of seen and of held-out combinations, with a single template and with the
# ensemble.

# %%
COMBOS = [f"{c} {s}" for c in clipviz.datasets.COLOURS for s in SHAPES]
n_split = 240 if FAST else 1000
seen = clipviz.datasets.shapes(n_split, seed=99, split="seen").to_imageset(label="colour_shape")
heldout = clipviz.datasets.shapes(n_split, seed=99, split="heldout").to_imageset(
    label="colour_shape"
)
emb_seen = clipviz.embed_images(model, seen, progress=False)
emb_heldout = clipviz.embed_images(model, heldout, progress=False)

combo_single = clipviz.embed_prompts(model, COMBOS, templates="single")
# 48 classes x 80 templates is 3,840 texts; the short "simple" set keeps the CI run quick
ENSEMBLE = "simple" if FAST else "openai_imagenet"
combo_ens = clipviz.embed_prompts(model, COMBOS, templates=ENSEMBLE)
composition = pd.DataFrame(
    {
        split: {
            "single template": acc1(combo_single.vectors, COMBOS, images),
            f"'{ENSEMBLE}' set, ensembled": acc1(combo_ens.vectors, COMBOS, images),
        }
        for split, images in [
            ("seen combinations", emb_seen),
            ("held-out combinations", emb_heldout),
        ]
    }
)
print(f"chance level is {1 / len(COMBOS):.1%}")
composition.style.format("{:.1%}")

# %% [markdown]
# Where do held-out images go when they are wrong? Usually to a *seen* combination that keeps one
# attribute: the colour right and the shape swapped for one the model has seen in that colour, or
# the reverse.

# %%
pred_h = clipviz.zero_shot(emb_heldout, combo_single)
wrong = pred_h.to_pandas().query("not correct")
wrong_colour = np.array([p.split()[0] for p in wrong.predicted]) == np.array(
    [t.split()[0] for t in wrong.label]
)
wrong_shape = np.array([p.split()[1] for p in wrong.predicted]) == np.array(
    [t.split()[1] for t in wrong.label]
)
print(
    f"{len(wrong)} held-out mistakes: colour kept in {wrong_colour.mean():.0%}, "
    f"shape kept in {wrong_shape.mean():.0%}"
)
wrong.groupby(["label", "predicted"]).size().sort_values(ascending=False).head(10)

# %% [markdown]
# ## Try it interactively
#
# The workbench's prompt panel does all of this live: switch the template set, toggle ensembling,
# and give a second prompt set to see the A/B table update as you type.
#
# ```python
# clipviz.Workbench(data.to_imageset(label="shape"), model=model, classnames=SHAPES)
# ```
