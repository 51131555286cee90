"""The README's generated sections match the code that generates them."""

from __future__ import annotations

from tools import docs


def test_config_reference_is_in_sync_with_the_models() -> None:
    assert docs.main(["--check", "config-reference"]) == 0, "README.md config reference is stale: run `make docs`"


def test_config_reference_lists_every_key() -> None:
    text = docs.README.read_text()
    for key in ("ai-pipelines:owner", "ai-pipelines:knowledgeBaseSync.worker.batchSize",
                "ai-pipelines:knowledgeBaseSync.queue.maxReceiveCount", "ai-pipelines:alarms.emails"):
        assert f"`{key}`" in text


def test_a_stale_section_is_detected() -> None:
    stale = docs.README.read_text().replace("| `ai-pipelines:owner` |", "| `ai-pipelines:ownr` |")
    assert docs.render(stale, ["config-reference"]) != stale
