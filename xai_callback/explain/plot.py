"""Pictures of explanations: bar charts, token strips and image heat maps.

Draws on a bare `matplotlib.figure.Figure` with the Agg canvas, so it works
headless and never switches the user's pyplot backend. Bars are labelled with
the feature names the response uses (raw features, groups, crosses) and the
raw value explained when it is known ("Type = Cat"); token features are drawn
as their text with each token's background coloured by its attribution; image
heat maps follow the metadata's `visualization` (type, polarity, colorMap,
clip percentiles, overlayType) with the service's defaults. Attributions that
are numerical noise (all below 1e-6 of the output) are not rescaled into
colours: the panel says so instead.
"""

import io
import textwrap

import numpy as np

try:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure
except ModuleNotFoundError as e:  # matplotlib is the optional "plot" extra
    raise ImportError(
        "Plots need matplotlib: pip install 'xai-callback[plot]'."
    ) from e

from xai_callback.publish.storage import gfile

# Vertex defaults (CONTRACT.md section 3).
DEFAULT_VISUALIZATION = {
    "type": "PIXELS",
    "polarity": "POSITIVE",
    "colorMap": "PINK_GREEN",
    "clipPercentUpperbound": 99.9,
    "clipPercentLowerbound": 62.0,
    "overlayType": "GRAYSCALE",
}
PINK, GREEN, RED = "#e7298a", "#1b9e77", "#d62728"
# Diverging maps run negative -> positive over [-1, 1]; the others over [0, 1].
COLOR_MAPS = {
    "PINK_GREEN": LinearSegmentedColormap.from_list("pink_green", [PINK, "#000000", GREEN]),
    "RED_GREEN": LinearSegmentedColormap.from_list("red_green", [RED, "#000000", GREEN]),
    "PINK_WHITE_GREEN": LinearSegmentedColormap.from_list("pink_white_green", [PINK, "#ffffff", GREEN]),
    "VIRIDIS": matplotlib.colormaps["viridis"],
    "RED": LinearSegmentedColormap.from_list("red", ["#000000", RED]),
    "GREEN": LinearSegmentedColormap.from_list("green", ["#000000", GREEN]),
}
DIVERGING = ("PINK_GREEN", "RED_GREEN", "PINK_WHITE_GREEN")
# Attributions whose total is below this share of the output are noise.
NEGLIGIBLE = 1e-6
TITLE_SIZE = 9


def plot_explanations(response, path, *, max_instances=4, top_n=10):
    """Saves a PNG with one row per instance (its first explained output).

    Example:

    ```python
    response = explain(export_dir, instances)
    plot_explanations(response, "explanation.png")
    ```

    Args:
        response: an `ExplainResponse`.
        path: where to write the PNG (any gfile path).
        max_instances: instances drawn at most.
        top_n: bars in each tabular chart.
    """
    figure = explanation_figure(response, max_instances=max_instances, top_n=top_n)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    with gfile.GFile(str(path), "wb") as f:
        f.write(buffer.getvalue())
    return str(path)


def explanation_figure(response, *, max_instances=4, top_n=10):
    """The `matplotlib.figure.Figure` that `plot_explanations` saves (same arguments)."""
    features = (response.metadata or {}).get("inputs", {})
    explanations = response.explanations[:max_instances]
    first = explanations[0].attributions[0].feature_attributions
    texts = [name for name in first if name in explanations[0].tokens]
    images = [name for name in first
              if name not in texts and _is_image(features.get(name, {}), first[name])]
    columns = len(images) + len(texts) + (1 if len(images) + len(texts) < len(first) else 0)
    row_height = 3.6 if columns > len(texts) else 2.0  # a strip of text needs less
    figure = Figure(figsize=(4.5 * columns, row_height * len(explanations)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(explanations), columns, squeeze=False)
    for row, explanation in enumerate(explanations):
        attribution = explanation.attributions[0]
        title = _output_title(attribution)
        noise = is_negligible(attribution)
        for column, name in enumerate(images):
            ax = axes[row][column]
            draw_image_heat_map(ax, np.zeros_like(attribution.feature_attributions[name])
                                if noise else attribution.feature_attributions[name],
                                explanation.inputs.get(name), features.get(name, {}).get("visualization"))
            _set_title(ax, f"instance {row}: {name} -> {title}", noise)
        for column, name in enumerate(texts, start=len(images)):
            ax = axes[row][column]
            draw_tokens(ax, explanation.tokens[name],
                        0 * attribution.feature_attributions[name] if noise
                        else attribution.feature_attributions[name])
            _set_title(ax, f"instance {row}: {name} -> {title}", noise)
        if columns > len(images) + len(texts):
            shown = set(images) | set(texts)
            tabular = {n: v for n, v in attribution.feature_attributions.items() if n not in shown}
            draw_bar_chart(axes[row][-1], tabular, features, top_n, explanation.inputs)
            _set_title(axes[row][-1], f"instance {row}: {title}", noise)
    return figure


def is_negligible(attribution):
    """Whether every attribution is numerical noise next to the explained output."""
    total = sum(float(np.sum(np.abs(v))) for v in attribution.feature_attributions.values())
    scale = max(abs(attribution.instance_output_value), abs(attribution.baseline_output_value))
    return total <= NEGLIGIBLE * scale + 1e-12


def draw_bar_chart(ax, feature_attributions, features_metadata, top_n=10, values=None):
    """Horizontal bars of the `top_n` largest |attributions|, largest on top.

    Labels are the feature names (`name = value` when `values` holds the
    raw value explained), or per element for features reported per element.
    """
    labels, bars = [], []
    for name, value in feature_attributions.items():
        flat = np.ravel(value)
        mapping = features_metadata.get(name, {}).get("indexFeatureMapping")
        for j, v in enumerate(flat):
            if flat.size == 1:
                labels.append(_labelled(name, (values or {}).get(name)))
            else:  # named columns (indexFeatureMapping) read better than positions
                labels.append(mapping[j] if mapping and len(mapping) == flat.size else f"{name}[{j}]")
            bars.append(float(v))
    order = np.argsort(-np.abs(bars), kind="stable")[:top_n][::-1]
    shown = [bars[i] for i in order]
    ax.barh([labels[i] for i in order], shown, color=[GREEN if v >= 0 else PINK for v in shown])
    ax.axvline(0, color="#444444", linewidth=0.8)
    ax.set_xlabel("attribution")


def draw_tokens(ax, tokens, attributions, padding=("",)):
    """The text, token by token, each on a background coloured by its attribution.

    Green raises the explained output, pink lowers it; the strongest token is
    fully coloured. Padding tokens are left out.
    """
    ax.set_axis_off()
    attributions = np.asarray(attributions, np.float64)
    largest = float(np.max(np.abs(attributions), initial=0.0)) or 1.0
    renderer = ax.figure.canvas.get_renderer()
    to_axes = ax.transAxes.inverted()
    x, y, line_height = 0.0, 0.95, 0.12
    for token, value in zip(tokens, attributions):
        if token in padding:
            continue
        strength = min(abs(value) / largest, 1.0)
        color = COLOR_MAPS["PINK_WHITE_GREEN"](0.5 + 0.5 * np.sign(value) * strength)
        text = ax.text(x, y, token, transform=ax.transAxes, va="top", fontsize=11,
                       bbox={"facecolor": color, "edgecolor": "none", "pad": 2})
        box = text.get_window_extent(renderer).transformed(to_axes)
        if x > 0 and box.x1 > 1.0:  # wrap: start a new line
            x, y = 0.0, y - line_height
            text.set_position((x, y))
            box = text.get_window_extent(renderer).transformed(to_axes)
        x = box.x1 + 0.02
    ax.text(0.0, 0.0, f"green raises, pink lowers the output (strongest: {largest:.3g})",
            transform=ax.transAxes, fontsize=8, color="#555555")


def draw_image_heat_map(ax, attribution, image, visualization=None):
    """Attribution heat map over `image` per the metadata's visualization settings."""
    settings = {**DEFAULT_VISUALIZATION, **(visualization or {})}
    heat = pixel_heat(attribution, settings)
    base = _display_image(image, settings["overlayType"], heat)
    ax.set_axis_off()
    if base is not None:
        ax.imshow(base, cmap="gray" if base.ndim == 2 else None, vmin=0, vmax=1)
    if settings["overlayType"] == "MASK_BLACK":
        return  # the masked image is the picture
    color_map = COLOR_MAPS.get(settings["colorMap"], COLOR_MAPS["VIRIDIS"])
    diverging = settings["colorMap"] in DIVERGING
    if settings["type"] == "OUTLINES":
        ax.contour(np.abs(heat), levels=[0.5], colors=[color_map(1.0)], linewidths=1.5)
        return
    if base is None:
        if diverging:
            ax.imshow(heat, cmap=color_map, vmin=-1, vmax=1)
        else:
            ax.imshow(np.abs(heat), cmap=color_map, vmin=0, vmax=1)
        return
    # Over a picture: colour by sign (diverging) or magnitude, opacity by magnitude.
    magnitude = np.clip(np.abs(heat), 0, 1)
    if diverging:
        rgba = np.where((heat >= 0)[..., None], color_map(1.0), color_map(0.0))
    else:
        rgba = color_map(magnitude)
    rgba = np.array(rgba, np.float64)
    rgba[..., 3] = magnitude * 0.85
    ax.imshow(rgba)


def pixel_heat(attribution, settings):
    """`[H, W]` in [-1, 1]: channel-summed, polarity-filtered, percentile-clipped."""
    heat = np.asarray(attribution, np.float64)
    if heat.ndim == 3:
        heat = heat.sum(axis=-1)
    polarity = settings["polarity"]
    if polarity == "POSITIVE":
        heat = np.maximum(heat, 0)
    elif polarity == "NEGATIVE":
        heat = np.maximum(-heat, 0)
    magnitude = np.abs(heat)
    upper = np.percentile(magnitude, float(settings["clipPercentUpperbound"]))
    lower = np.percentile(magnitude, float(settings["clipPercentLowerbound"]))
    if upper <= 0:
        return np.zeros_like(heat)
    return np.where(magnitude < lower, 0.0, np.clip(heat, -upper, upper) / upper)


def _display_image(image, overlay, heat):
    """The picture under the heat map, scaled to [0, 1] (None for overlay NONE)."""
    if image is None or overlay == "NONE":
        return None
    image = np.asarray(image, np.float64)
    span = image.max() - image.min()
    image = (image - image.min()) / span if span > 0 else np.zeros_like(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if overlay == "GRAYSCALE" and image.ndim == 3:
        image = image[..., :3].mean(axis=-1)
    if overlay == "MASK_BLACK":
        mask = np.abs(heat)
        image = image * (mask[..., None] if image.ndim == 3 else mask)
    return image


def _is_image(feature_metadata, attribution):
    if str(feature_metadata.get("modality", "")).lower() == "image":
        return True
    shape = np.shape(attribution)
    return len(shape) == 3 and shape[-1] in (1, 3, 4)


def _output_title(attribution):
    name = attribution.output_display_name or attribution.output_name
    if not attribution.output_display_name and attribution.output_index:
        name += str(attribution.output_index)
    return (f"{name} = {attribution.instance_output_value:.4g} "
            f"(baseline {attribution.baseline_output_value:.4g})")


def _set_title(ax, text, noise=False):
    """A title wrapped to the width of its panel (a long one would leave the figure)."""
    if noise:
        text += " - attributions ~0: the output does not respond, nothing to show"
    width_inches = ax.get_position().width * ax.figure.get_figwidth()
    characters = max(20, int(width_inches * 72 / (TITLE_SIZE * 0.6)))
    ax.set_title(textwrap.fill(text, characters), fontsize=TITLE_SIZE)


def _labelled(name, value):
    """`name = value` for a short scalar raw value, else the name."""
    if value is None:
        return name
    value = np.asarray(value)
    if value.size != 1:
        return name
    item = value.reshape(-1)[0]
    item = item.decode("utf-8", "replace") if isinstance(item, bytes) else item
    text = f"{item:.4g}" if isinstance(item, (float, np.floating)) else str(item)
    return f"{name} = {text}" if len(text) <= 24 else name
