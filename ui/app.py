"""``bia ui``: the chat interface, a gradio app served on this machine only.

Left: the conversation, uploads, sample data and model choice. Right: the input image, the label
overlay, the per-object table (sortable, downloadable), a plot, the tool-call trace and the
session downloads. Replies stream: each tool call shows up as it starts and ends.
"""

from __future__ import annotations

import argparse
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ui.handlers import (
    DEFAULT_MAX_UPLOAD_MB,
    STATED_FIELDS,
    ModelFactory,
    UISession,
    UploadError,
)

# Before gradio is imported: no usage statistics leave the machine.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

EMBEDDED_CHOICES = ["embedded", "0.5b", "1.5b"]
EXAMPLES = [
    "segment the nuclei and measure their area",
    "denoise the image, then segment the nuclei and measure them",
    "how do I choose a threshold method?",
]


def _reply_stream(ui: UISession, text: str, model: str | None,
                  base_url: str | None) -> Iterator[tuple[str, Any]]:
    """Run a turn in a thread and yield ("progress", line) events, then ("done", result)."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "tool_start":
            events.put(("progress", f"⏳ running `{data.get('tool')}`…"))
        elif kind == "tool_end":
            events.put(("progress", f"✓ `{data.get('tool')}` done"))
        elif kind == "model_start":
            events.put(("progress", "💭 thinking…"))

    def work() -> None:
        try:
            events.put(("done", ui.ask(text, model=model, base_url=base_url,
                                       on_event=on_event)))
        except Exception as exc:  # shown to the person, never a dead page
            events.put(("error", f"{type(exc).__name__}: {exc}"))

    threading.Thread(target=work, daemon=True).start()
    while True:
        kind, payload = events.get()
        yield kind, payload
        if kind in ("done", "error"):
            return


def build_app(model_factory: ModelFactory | None = None, *, output_root: str | Path | None = None,
              max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, default_model: str = "embedded",
              base_url: str = "") -> Any:
    """The gradio Blocks app; each browser session gets its own :class:`UISession`."""
    import gradio as gr

    from tools.datasets import list_datasets

    samples = [name for name in list_datasets() if "timelapse" not in name]

    def session_of(state: UISession | None) -> UISession:
        return state or UISession(model_factory, output_root=output_root,
                                  max_upload_mb=max_upload_mb)

    no_fields = (gr.update(),) * len(STATED_FIELDS)

    def field_values(ui: UISession) -> tuple[Any, ...]:
        values = ui.reading_fields()
        return tuple(values[name] for name in STATED_FIELDS)

    def on_upload(file: Any, state: UISession | None):
        ui = session_of(state)
        if file is None:
            return ui, gr.update(), "", *no_fields
        path = file if isinstance(file, str) else getattr(file, "name", file)
        try:
            picture, message = ui.upload(path)
        except UploadError as exc:
            return ui, gr.update(), f"⚠️ {exc}", *no_fields
        return ui, picture, message, *field_values(ui)  # pre-filled from the file

    def on_state(state: UISession | None, *values: Any):
        ui = session_of(state)
        try:
            picture, message = ui.state_current(**dict(zip(STATED_FIELDS, values,
                                                           strict=True)))
        except UploadError as exc:
            return ui, gr.update(), f"⚠️ {exc}"
        return ui, picture, message

    def on_sample(name: str | None, state: UISession | None):
        ui = session_of(state)
        if not name:
            return ui, gr.update(), "", *no_fields
        try:
            picture, message = ui.sample(name)
        except Exception as exc:
            return ui, gr.update(), f"⚠️ {exc}", *no_fields
        return ui, picture, message, *field_values(ui)

    def on_send(text: str, history: list[dict[str, Any]], state: UISession | None,
                model: str, url: str):
        ui = session_of(state)
        history = [*(history or []), {"role": "user", "content": text},
                   {"role": "assistant", "content": ""}]
        progress_lines: list[str] = []
        unchanged = (gr.update(),) * 5
        if not text or not text.strip():
            history[-1]["content"] = "Type a request or a question first."
            yield (ui, history, "", *unchanged)
            return
        for kind, payload in _reply_stream(ui, text, model or None, url or None):
            if kind == "progress":
                progress_lines.append(payload)
                history[-1]["content"] = "\n".join(progress_lines)
                yield (ui, history, "", *unchanged)
            elif kind == "error":
                history[-1]["content"] = f"⚠️ {payload}"
                yield (ui, history, "", *unchanged)
            else:
                result = payload
                history[-1]["content"] = result.text
                yield (ui, history, "",
                       result.overlay if result.overlay is not None else gr.update(),
                       # Rounded for reading; the CSV download keeps full precision.
                       result.table.round(4) if result.table is not None else gr.update(),
                       str(result.table_csv) if result.table_csv else gr.update(),
                       str(result.plot) if result.plot else gr.update(),
                       result.trace)

    def on_export(state: UISession | None):
        ui = session_of(state)
        try:
            archive, script = ui.export()
        except Exception as exc:
            return ui, gr.update(), gr.update(), f"⚠️ {exc}"
        return ui, str(archive), str(script), f"Exported to {archive.parent}"

    with gr.Blocks(title="bia — bio-image analysis assistant", analytics_enabled=False) as app:
        state = gr.State(None)
        gr.Markdown("## bia — bio-image analysis assistant\nUpload an image or pick a sample, "
                    "then ask in plain words. Everything runs on this machine.")
        with gr.Row():
            with gr.Column(scale=5):
                chatbot = gr.Chatbot(label="Conversation", height=460, elem_id="chat")
                request = gr.Textbox(label="Request", elem_id="request", lines=2,
                                     placeholder=EXAMPLES[0])
                with gr.Row():
                    send = gr.Button("Send", variant="primary", elem_id="send")
                    gr.Examples(EXAMPLES, inputs=request, label="Examples")
                with gr.Row():
                    upload = gr.File(label="Upload image (TIFF, OME-TIFF, PNG, JPEG, "
                                     "OME-Zarr as .zip)", elem_id="upload",
                                     file_types=[".tif", ".tiff", ".png", ".jpg", ".jpeg",
                                                 ".zip"])
                    sample = gr.Dropdown(samples, label="…or a sample", value=None,
                                         elem_id="sample")
                with gr.Accordion("What the image is (from the file; edit and apply)",
                                  open=False, elem_id="stated"):
                    with gr.Row():
                        axes_box = gr.Textbox(label="Axes", placeholder="TYX, ZYX, CYX ...",
                                              elem_id="stated-axes", max_lines=1)
                        pixel_box = gr.Number(label="Pixel size", elem_id="stated-pixel-size")
                        unit_box = gr.Dropdown(["nm", "µm", "mm"], value=None, label="Unit",
                                               elem_id="stated-unit")
                        z_box = gr.Number(label="Z step", elem_id="stated-z-step")
                    with gr.Row():
                        time_box = gr.Number(label="Time step", elem_id="stated-time-step")
                        tunit_box = gr.Dropdown(["ms", "s", "min", "h"], value=None,
                                                label="Time unit", elem_id="stated-time-unit")
                        channels_box = gr.Textbox(label="Channel names",
                                                  placeholder="DAPI, GFP", max_lines=1,
                                                  elem_id="stated-channels")
                        apply_stated = gr.Button("Apply", elem_id="stated-apply")
                stated_boxes = [axes_box, pixel_box, unit_box, z_box, time_box, tunit_box,
                                channels_box]
                status = gr.Markdown(elem_id="status")
                with gr.Accordion("Model", open=False):
                    model = gr.Dropdown(EMBEDDED_CHOICES, value=default_model,
                                        allow_custom_value=True, label="Model",
                                        info="embedded runs offline; or a server's model name")
                    url = gr.Textbox(value=base_url, label="OpenAI-compatible base URL",
                                     placeholder="http://127.0.0.1:11434/v1")
            with gr.Column(scale=6):
                with gr.Row():
                    source = gr.Image(label="Input", interactive=False, elem_id="input-image")
                    overlay = gr.Image(label="Objects (overlay)", interactive=False,
                                       elem_id="overlay")
                table = gr.Dataframe(label="Measurements (click a header to sort)",
                                     interactive=False, elem_id="table", max_height=320)
                with gr.Row():
                    table_file = gr.File(label="Table (CSV)", elem_id="table-file")
                    plot = gr.Image(label="Plot", interactive=False, elem_id="plot")
                with gr.Accordion("Tool calls", open=False):
                    trace = gr.Dataframe(label="Trace", interactive=False, elem_id="trace")
                with gr.Row():
                    export = gr.Button("Export session (script + provenance)",
                                       elem_id="export")
                    session_zip = gr.File(label="Session folder (zip)", elem_id="session-zip")
                    script = gr.File(label="Script (session.py)", elem_id="script")
                export_status = gr.Markdown()

        upload.change(on_upload, [upload, state], [state, source, status, *stated_boxes])
        apply_stated.click(on_state, [state, *stated_boxes], [state, source, status])
        sample.change(on_sample, [sample, state], [state, source, status, *stated_boxes])
        outputs = [state, chatbot, request, overlay, table, table_file, plot, trace]
        inputs = [request, chatbot, state, model, url]
        send.click(on_send, inputs, outputs)
        request.submit(on_send, inputs, outputs)
        export.click(on_export, [state], [state, session_zip, script, export_status])
    return app


def add_ui_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bia ui``."""
    parser.add_argument("--port", type=int, default=7860, help="port on 127.0.0.1")
    parser.add_argument("--model", default="embedded", help="embedded, 0.5b, 1.5b or a "
                        "server's model name")
    parser.add_argument("--base-url", default="", help="OpenAI-compatible server")
    parser.add_argument("--outdir", type=Path, default=Path("bia_output"))
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB)
    parser.add_argument("--auth", default=None, metavar="USER:PASSWORD",
                        help="ask for this username and password")
    parser.add_argument("--share", action="store_true",
                        help="also make a public gradio link (off by default)")


def ui_main(args: argparse.Namespace) -> int:
    """Serve the interface until interrupted."""
    auth = None
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep or not user or not password:
            raise SystemExit("--auth must be USER:PASSWORD")
        auth = (user, password)
    app = build_app(output_root=args.outdir, max_upload_mb=args.max_upload_mb,
                    default_model=args.model, base_url=args.base_url)
    app.queue().launch(server_name="127.0.0.1", server_port=args.port, share=args.share,
                       auth=auth, max_file_size=f"{int(args.max_upload_mb)}mb",
                       footer_links=[])
    return 0
