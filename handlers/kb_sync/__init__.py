"""Knowledge-base auto-sync: start a Bedrock ingestion job when documents in the data source change.

Lambda's entry point is ``kb_sync.app.handler``. The pure core (``messages``, ``classify``, ``planning``,
``sync``) decides what a batch means and what to do about it; ``bedrock``, ``follow_up`` and ``clients`` are
the only modules that talk to AWS, and ``app`` wires them together with Powertools.
"""
