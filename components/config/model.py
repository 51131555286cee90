"""Config of a model a pipeline calls: the model or inference profile, the task, its prompt template."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from components.config.sections import Section, each_matching

_MODEL_ID_PATTERN = r"^[a-z0-9-]{1,63}\.[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63})?$"
_INFERENCE_PROFILE_GEOGRAPHIES = ("us", "eu", "apac", "us-gov", "jp", "au", "ca", "global")
_REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
_LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}$"

# Default prompt per task. `{{content}}` becomes the item's text, `{{labels}}` the configured labels; the item is
# fenced so instructions inside it read as data. Each asks for JSON so consumers get a structured result.
PROMPT_TEMPLATES: dict[str, str] = {
    "classify": "Classify the item between the <item> tags into exactly one of these labels: {{labels}}.\n"
                "Answer with JSON only: {\"label\": \"<one of the labels>\", \"confidence\": <number 0..1>}.\n"
                "<item>\n{{content}}\n</item>",
    "summarize": "Summarize the item between the <item> tags in at most three sentences.\n"
                 "Answer with JSON only: {\"summary\": \"<summary>\"}.\n<item>\n{{content}}\n</item>",
    "extract": "List the people, organizations, places and dates named in the item between the <item> tags.\n"
               "Answer with JSON only: {\"entities\": [{\"type\": \"<type>\", \"text\": \"<text>\"}]}.\n"
               "<item>\n{{content}}\n</item>",
    "moderate": "Decide whether the item between the <item> tags contains hate, harassment, violence, sexual "
                "content or self-harm.\nAnswer with JSON only: {\"flagged\": <true|false>, \"categories\": "
                "[\"<category>\"]}.\n<item>\n{{content}}\n</item>",
}
CONTENT_PLACEHOLDER = "{{content}}"
LABELS_PLACEHOLDER = "{{labels}}"
# Time the worker keeps for bookkeeping (result write, publication) beyond one model request.
WORKER_BOOKKEEPING_SECONDS = 10

_Regions = Annotated[tuple[str, ...], each_matching(_REGION_PATTERN, "AWS regions")]
_Labels = Annotated[tuple[str, ...], each_matching(_LABEL_PATTERN, "labels")]


class ModelSettings(Section):
    """The Bedrock model, the task it performs and how the worker calls it."""

    model_id: str = Field(pattern=_MODEL_ID_PATTERN,
                          description="Bedrock foundation model id, e.g. anthropic.claude-3-haiku-20240307-v1:0.")
    inference_profile_id: str | None = Field(
        None, max_length=200, description="Cross-region inference profile to invoke instead, <geography>.<modelId>.")
    inference_profile_regions: _Regions = Field(
        (), max_length=20, description="Regions the inference profile routes to (required with a profile).")
    task: Literal["classify", "summarize", "extract", "moderate"] = Field(
        "classify", description="What the model does with each item; picks the default prompt.")
    prompt_template: str | None = Field(
        None, min_length=len(CONTENT_PLACEHOLDER), max_length=2000,
        description="Prompt with {{content}} (and {{labels}}); omit for the task's default.")
    labels: _Labels = Field((), max_length=20, description="Labels a classification chooses from (0..20).")
    max_output_tokens: int = Field(512, ge=1, le=4096, description="Most tokens the model may generate per item.")
    temperature: float = Field(0.0, ge=0.0, le=1.0, description="Sampling temperature (0 for repeatable answers).")
    request_timeout_seconds: int = Field(30, ge=5, le=300, description="Read timeout of one model request.")
    max_input_chars: int = Field(20_000, ge=100, le=200_000,
                                 description="Longest item text accepted; longer items are rejected, not truncated.")
    throttle_alarm_threshold: int = Field(10, ge=0, le=100_000,
                                          description="Model throttles per minute above which the alarm fires.")



    @model_validator(mode="after")
    def _coherent(self) -> ModelSettings:
        if self.inference_profile_id is not None:
            geography, _, model = self.inference_profile_id.partition(".")
            if geography not in _INFERENCE_PROFILE_GEOGRAPHIES or model != self.model_id:
                raise ValueError(
                    f"inferenceProfileId {self.inference_profile_id} must be <geography>.{self.model_id} with a "
                    f"geography in {', '.join(_INFERENCE_PROFILE_GEOGRAPHIES)}: the worker may invoke only the "
                    "configured model")
            if not self.inference_profile_regions:
                raise ValueError(f"inferenceProfileId {self.inference_profile_id} needs inferenceProfileRegions, "
                                 "the regions it routes to, so the role can allow the model there")
        elif self.inference_profile_regions:
            raise ValueError("inferenceProfileRegions is set without an inferenceProfileId")
        if CONTENT_PLACEHOLDER not in self.prompt:
            raise ValueError(f"promptTemplate has no {CONTENT_PLACEHOLDER}: the model would never see the item")
        if LABELS_PLACEHOLDER in self.prompt and not self.labels:
            raise ValueError(f"the {self.task} prompt uses {LABELS_PLACEHOLDER} but labels is empty")
        return self

    @property
    def prompt(self) -> str:
        """The prompt template in effect: the configured one, else the task's default."""
        return self.prompt_template if self.prompt_template is not None else PROMPT_TEMPLATES[self.task]

    @property
    def invoked_id(self) -> str:
        """What the worker passes as modelId: the inference profile when there is one, else the model."""
        return self.inference_profile_id or self.model_id
