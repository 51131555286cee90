"""Event-driven AI processing: classify, summarize, extract or moderate items arriving on an EventBridge bus.

Lambda's entry point is ``event_processor.app.handler``. The pure core (``intake``, ``keys``, ``prompt``,
``retry``, ``results``' record shapes, ``outcomes``) decides what a record means and what becomes of it;
``model``, ``store`` and ``publish`` are the only modules that talk to AWS, and ``app`` wires them together with
Powertools (batch processing, idempotency, parser models, logger, metrics).
"""
