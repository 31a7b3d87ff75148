"""The shared model fixtures are what the other tests assume they are."""
import json


def test_tiny_qwen3_has_real_tokenizer_and_head_dim_64(tiny_qwen3_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen3_dir)
    assert json.loads((tiny_qwen3_dir / "config.json").read_text())["head_dim"] == 64
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                       add_generation_prompt=True, enable_thinking=False)
    assert rendered.startswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    assert model.config.vocab_size >= len(tok)
