"""The desk camera node: continuous, tamper-evident recording over a service desk.

The recording core: a camera (:mod:`camera_node.picamera` on a Pi,
:mod:`camera_node.synthetic` elsewhere) pushes H.264 frames to the
:class:`~camera_node.segments.Segmenter`, which cuts them at keyframes into
MPEG-TS segments; the :class:`~camera_node.store.SegmentStore` writes each whole
and enters it in a signed, hash-chained manifest (:mod:`wire.footage`);
:class:`~camera_node.retention.Retention` makes room, never deleting held footage;
the :class:`~camera_node.recorder.Recorder` keeps it all running.
"""
