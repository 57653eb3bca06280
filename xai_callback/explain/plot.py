"""Pictures of explanations: top-feature bar charts and image heat maps.

Draws on a bare `matplotlib.figure.Figure` with the Agg canvas, so it works
headless and never switches the user's pyplot backend. Image heat maps follow
the metadata's `visualization` (type, polarity, colorMap, clip percentiles,
overlayType) with the service's defaults.
"""

import io

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

from xai_callback.storage import gfile

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
    features = (response.metadata or {}).get("inputs", {})
    explanations = response.explanations[:max_instances]
    first = explanations[0].attributions[0].feature_attributions
    images = [name for name in first if _is_image(features.get(name, {}), first[name])]
    columns = len(images) + (1 if len(images) < len(first) else 0)
    figure = Figure(figsize=(4.5 * columns, 3.6 * len(explanations)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(explanations), columns, squeeze=False)
    for row, explanation in enumerate(explanations):
        attribution = explanation.attributions[0]
        title = _output_title(attribution)
        for column, name in enumerate(images):
            draw_image_heat_map(axes[row][column], attribution.feature_attributions[name],
                                explanation.inputs.get(name),
                                features.get(name, {}).get("visualization"))
            axes[row][column].set_title(f"instance {row}: {name} -> {title}", fontsize=9)
        if columns > len(images):
            tabular = {n: v for n, v in attribution.feature_attributions.items() if n not in images}
            draw_bar_chart(axes[row][-1], tabular, features, top_n)
            axes[row][-1].set_title(f"instance {row}: {title}", fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    with gfile.GFile(str(path), "wb") as f:
        f.write(buffer.getvalue())
    return str(path)


def draw_bar_chart(ax, feature_attributions, features_metadata, top_n=10):
    """Horizontal bars of the `top_n` largest |attributions|, largest on top."""
    labels, values = [], []
    for name, value in feature_attributions.items():
        flat = np.ravel(value)
        mapping = features_metadata.get(name, {}).get("indexFeatureMapping")
        for j, v in enumerate(flat):
            # Named columns (indexFeatureMapping) read better than positions.
            labels.append(name if flat.size == 1 else (mapping[j] if mapping else f"{name}[{j}]"))
            values.append(float(v))
    order = np.argsort(-np.abs(values), kind="stable")[:top_n][::-1]
    shown = [values[i] for i in order]
    ax.barh([labels[i] for i in order], shown, color=[GREEN if v >= 0 else PINK for v in shown])
    ax.axvline(0, color="#444444", linewidth=0.8)
    ax.set_xlabel("attribution")


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
