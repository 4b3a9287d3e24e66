"""The Chatterbox engine's own settings: the ``[engine.options]`` table of ``engine = "chatterbox"``.

Pure settings, validated without torch (``seqopt config validate`` and
``seqopt plan`` check them on a light install). The settings every engine
shares (device, dtype, seed, pauses, crossfade, batch size) are ``[synthesis]``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from seqopt_core.config import bounded, order_error

#: Largest speech-tokens-per-text-token ratio (stock speech runs at 4 to 8).
MAX_TOKENS_RATIO = 64.0
#: Most speech tokens T3 can generate for one segment (its learned speech positions).
MAX_SPEECH_TOKENS = 4096

_TokensRatio = bounded(0, MAX_TOKENS_RATIO, "speech tokens per text token", lo_open=True)
_MinTokensRatio = bounded(0, MAX_TOKENS_RATIO, "speech tokens per text token")
_SpeechTokens = bounded(1, MAX_SPEECH_TOKENS, "speech tokens", whole=True)
_Exaggeration = bounded(0, 2)
_Temperature = bounded(0, 5, lo_open=True)
_Share = bounded(0, 1)
_TopP = bounded(0, 1, lo_open=True)
_RepetitionPenalty = bounded(1, 10)
_CfgWeight = bounded(0, 5)
_CfmSteps = bounded(1, 50, "flow-matching steps", whole=True)
_PromptSeconds = bounded(0.04, 10, "seconds", why="a speech token is 0.04 s; S3Gen's prompt is at most 10 s")


class LengthGuardConfig(BaseModel):
    """Stop token suppressed below ``min_ratio`` x text tokens, forced at ``max_ratio`` x."""

    model_config = ConfigDict(extra="forbid")

    min_ratio: _MinTokensRatio = Field(
        1.0, description="stop token suppressed below this many speech tokens per text token")
    max_ratio: _TokensRatio = Field(
        8.0, description="stop token forced at this many speech tokens per text token")

    @model_validator(mode="after")
    def _min_within_max(self) -> LengthGuardConfig:
        if self.min_ratio > self.max_ratio:
            raise ValueError(order_error(
                "min_ratio", self.min_ratio, "max_ratio", self.max_ratio,
                why="the stop token cannot be suppressed past the point where it is forced"))
        return self


class ChatterboxOptions(BaseModel):
    """How the Chatterbox engine (T3 + S3Gen) turns segments into audio."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str | None = Field(
        None, description="local checkpoint folder in the released layout; none: download "
        "ResembleAI/chatterbox from Hugging Face")
    voice: str | None = Field(None, description="reference WAV for the voice; none: the "
                              "checkpoint's built-in voice (conds.pt)")
    exaggeration: _Exaggeration = Field(0.5, description="emotion exaggeration")
    temperature: _Temperature = Field(0.8, description="sampling temperature")
    top_p: _TopP = Field(1.0, description="nucleus sampling")
    min_p: _Share = Field(0.05, description="min-p sampling")
    repetition_penalty: _RepetitionPenalty = Field(
        1.2, description="penalty on repeated speech tokens (1: off)")
    cfg_weight: _CfgWeight = Field(0.5, description="classifier-free guidance weight (0: off)")
    max_new_tokens: _SpeechTokens | None = Field(
        None, description="fixed cap on speech tokens per segment (stock: 1000); "
        "none: derived from the segment's text length")
    speech_tokens_per_text_token: _TokensRatio = Field(
        6.0, description="derived cap: this many speech tokens per text token, plus 50")
    benchmark_tokens_per_text_token: _TokensRatio | None = Field(
        None, description="benchmark mode: generate exactly this many speech tokens per "
        "text token, ignoring the stop token (random weights never stop sensibly)")
    length_guard: LengthGuardConfig | None = Field(
        None, description="cheap guard against runaway speech, with any attention backend")
    watermark: bool = Field(True, description="apply the Perth watermark, as upstream")
    # -- approximations: opt-in, never a profile's default (docs/engine.md, bench_s3gen) --
    s3gen_cfm_steps: _CfmSteps | None = Field(
        None, description="APPROXIMATE: S3Gen flow-matching steps per call (none: upstream's 10); "
        "fewer steps are faster and change the audio")
    s3gen_prompt_seconds: _PromptSeconds | None = Field(
        None, description="APPROXIMATE: S3Gen re-reads only the last this-many seconds of the "
        "voice prompt (none: all of it, up to 10 s); shorter is faster and changes the audio")
    s3gen_short_prompt: Literal["every_chunk", "first_chunk"] = Field(
        "every_chunk", description="with s3gen_prompt_seconds: shorten the prompt for every "
        "chunk, or only for each segment's first chunk (first audio sooner)")
    s3gen_carry_source: bool = Field(
        False, description="APPROXIMATE: HiFT reuses the previous chunk's source signal over the "
        "context it re-reads (CosyVoice's streaming cache; upstream renders it afresh); changes the audio")



class MultilingualOptions(ChatterboxOptions):
    """How the ``chatterbox-multilingual`` engine turns segments into audio: the English
    engine's settings, with the sampling defaults of ``ChatterboxMultilingualTTS.generate``
    (repetition penalty 2.0, top-p 1.0). The language is ``synthesis.language``."""

    checkpoint: str | None = Field(
        None, description="local checkpoint folder in the released Multilingual layout "
        "(t3_mtl23ls_v2.safetensors, ve.pt, s3gen.pt, grapheme_mtl_merged_expanded_v1.json); "
        "none: download it from ResembleAI/chatterbox on Hugging Face")
    repetition_penalty: _RepetitionPenalty = Field(
        2.0, description="penalty on repeated speech tokens (1: off; Multilingual's default 2.0)")


_TopK = bounded(1, 100_000, "tokens", whole=True)


class TurboOptions(ChatterboxOptions):
    """How the ``chatterbox-turbo`` engine turns segments into audio: the Chatterbox
    settings that apply to Turbo, with ``ChatterboxTurboTTS.generate``'s defaults
    (temperature 0.8, top-k 1000, top-p 0.95, repetition penalty 1.2). Turbo has no
    classifier-free guidance, min-p or emotion exaggeration (upstream ignores them), so
    they must stay 0; its S3Gen takes 2 mean-flow steps unless ``s3gen_cfm_steps`` says."""

    checkpoint: str | None = Field(
        None, description="local checkpoint folder in the released Turbo layout (t3_turbo_v1.safetensors, "
        "s3gen_meanflow.safetensors, ve.safetensors, the GPT-2 tokenizer files); none: download "
        "ResembleAI/chatterbox-turbo from Hugging Face")
    top_k: _TopK = Field(1000, description="top-k sampling")
    top_p: _TopP = Field(0.95, description="nucleus sampling")
    min_p: _Share = Field(0.0, description="not used by Turbo: must be 0")
    exaggeration: _Exaggeration = Field(0.0, description="not used by Turbo: must be 0")
    cfg_weight: _CfgWeight = Field(0.0, description="Turbo has no classifier-free guidance: must be 0")

    @model_validator(mode="after")
    def _no_guidance(self) -> TurboOptions:
        used = [f"{key} = {getattr(self, key)}" for key in ("cfg_weight", "min_p", "exaggeration")
                if getattr(self, key)]
        if used:
            raise ValueError(f"{', '.join(used)}: Chatterbox Turbo has no classifier-free guidance, min-p or "
                             "emotion exaggeration (upstream ignores them); leave them at 0, or use engine "
                             "'chatterbox' for them")
        return self
