"""Context distillation on the real tiny Qwen3 (random weights, the real tokenizer and chat template), on CPU: the
KL term, where its gradients go, the teacher cache, a resumed run, and the retain KL pulling a drifted model back."""
from __future__ import annotations

import json

import pytest
import torch
from peft import LoraConfig, get_peft_model
from test_train_lora import run_args, train, write_release
from transformers import AutoModelForCausalLM, AutoTokenizer

from ziglora.common.io import write_json, write_jsonl
from ziglora.data.stages import output_entry
from ziglora.serve.contract import LORA_PROJECTIONS, THINKING_OFF
from ziglora.train import teacher as teacher_pass
from ziglora.train.distill import DistillTrainer, collate_with_teacher_rows, topk_kl
from ziglora.train.examples import NO_TEACHER, chat_example
from ziglora.train.teacher import DistillItem, TeacherPlan, build_table, run_teacher, score_items

MODES = (lambda m: m.eval(), lambda m: m.train())
QUESTION, ANSWER = "Which builtin replaced @setCold?", "@branchHint replaced @setCold in this release."


def lora_model(model_dir):
    """The tiny Qwen3 with LoRA. Its random weights spread each next-token distribution almost evenly over the
    vocabulary, where a top-k carries no mass; a larger final norm makes them as peaked as a trained model's."""
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with torch.no_grad():
        base.model.norm.weight.mul_(30)
    base.config.use_cache = False
    return get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=list(LORA_PROJECTIONS),
                                           task_type="CAUSAL_LM"))


def batch_of(tok, items: list[DistillItem], table) -> dict:
    """One padding-free batch of the items' student sequences, as the trainer's collator builds it."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rows = []
    for item in items:
        ids, labels = chat_example([{"role": "user", "content": item.question},
                                    {"role": "assistant", "content": item.answer}], tok, THINKING_OFF)
        rows.append({"input_ids": ids, "labels": labels, "teacher_row": table.rows_for(item.key, labels),
                     "seq_lengths": [len(ids)]})
    collate = collate_with_teacher_rows(DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id,
                                                                        padding_free=True), padding_free=True)
    return collate(rows)


def distill_loss(model, batch: dict, table, ce_weight=0.0) -> torch.Tensor:
    trainer = DistillTrainer.__new__(DistillTrainer)  # only compute_loss is used: no Trainer machinery needed
    trainer.teacher_ids, trainer.teacher_logprobs = table.ids, table.logprobs
    trainer.ce_weight, trainer.unsloth = ce_weight, False
    trainer.args = type("Args", (), {"average_tokens_across_devices": False})()
    return trainer.compute_loss(model, dict(batch))


def test_topk_kl_is_zero_for_the_same_distribution_and_positive_otherwise():
    torch.manual_seed(0)
    logits = torch.randn(5, 50)
    teacher = torch.log_softmax(logits, -1).topk(8)
    same = topk_kl(logits, teacher.indices, teacher.values)
    assert same.abs().max() < 1e-5
    other = topk_kl(torch.randn(5, 50), teacher.indices, teacher.values)
    assert (other > 0.01).all()


def test_kl_is_zero_when_student_and_teacher_see_the_same_input_and_the_adapter_is_zero(tiny_qwen3_dir):
    tok = AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    model = lora_model(tiny_qwen3_dir)
    items = [DistillItem("a", QUESTION, ANSWER), DistillItem("b", "What is 2 + 2?", "4.")]
    table = build_table(items, score_items(model, tok, items, "0.14.0", 16, 4096, unsloth=False))
    loss = distill_loss(model.train(), batch_of(tok, items, table), table)
    assert loss.item() == pytest.approx(0.0, abs=1e-4)


def test_gradients_of_the_distillation_loss_reach_only_lora_weights(tiny_qwen3_dir):
    tok = AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    model = lora_model(tiny_qwen3_dir)
    items = [DistillItem("a", QUESTION, ANSWER, context="@branchHint replaces @setCold in Zig 0.14.0.")]
    table = build_table(items, score_items(model, tok, items, "0.14.0", 16, 4096, unsloth=False))
    loss = distill_loss(model.train(), batch_of(tok, items, table), table, ce_weight=0.5)
    assert loss.item() > 0.01  # the teacher read the section, the student did not
    loss.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad and all("lora_" in n for n in with_grad)
    assert any(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)


def test_the_retain_kl_pulls_a_drifted_model_back(tiny_qwen3_dir):
    """Self-distillation on the base model's own answers: an adapter that drifted away (random LoRA B) is pulled
    back towards what the base model said, measured as the KL on those answers."""
    tok = AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    model = lora_model(tiny_qwen3_dir)
    items = [DistillItem(f"g{i}", f"Name a colour number {i}.", f"Colour {i} is blue, like the sky.")
             for i in range(4)]
    table = build_table(items, score_items(model, tok, items, "0.14.0", 16, 4096, unsloth=False))
    batch = batch_of(tok, items, table)
    torch.manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 2.0)
    model.train()
    drifted = distill_loss(model, batch, table).item()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(15):
        optimizer.zero_grad()
        distill_loss(model, batch, table).backward()
        optimizer.step()
    after = distill_loss(model, batch, table).item()
    assert drifted > 0.05 and after < 0.5 * drifted


def plan(items: list[DistillItem], prompts=("Say hi.",)) -> TeacherPlan:
    return TeacherPlan(list(prompts), 4, items, True, False, 8, 8, 4096)


def test_the_teacher_cache_is_reused_when_inputs_are_unchanged_and_rebuilt_when_one_changes(tiny_qwen3_dir, tmp_path,
                                                                                             monkeypatch):
    tok = AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    model = lora_model(tiny_qwen3_dir)
    scored: list[int] = []
    real = teacher_pass.score_items

    def counting(*args, **kwargs):
        scored.append(len(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(teacher_pass, "score_items", counting)
    items = [DistillItem("f1", QUESTION, ANSWER, context="Section text one.")]

    def go(items):
        return run_teacher(plan(items), model, tok, "0.14.0", str(tiny_qwen3_dir), tmp_path / "teacher", MODES, False)

    first = go(items)
    again = go(items)
    assert scored == [first.info["items"]] and again.info["reused"] and not first.info["reused"]
    assert torch.equal(first.table.ids, again.table.ids) and first.general == again.general
    assert first.table.spans == again.table.spans
    changed = go([DistillItem("f1", QUESTION, ANSWER, context="Section text two.")])
    assert len(scored) == 2 and not changed.info["reused"]
    assert len(list((tmp_path / "teacher").iterdir())) == 2  # one cache per set of inputs, no temp folder left


def release_with_facts(root):
    """write_release plus fact Q&A records whose sections are in the release notes, and a general prompts file."""
    rel, prompts = write_release(root)
    facts = [{"id": f"qa-facts/{i}", "source": "qa-facts", "kind": "cloze", "term": f"value_{i}",
              "section": [f"release-notes topic {i % 4}"],
              "messages": [{"role": "user", "content": f"Which value does topic {i % 4} declare?"},
                           {"role": "assistant", "content": f"value_{i % 4}: it is declared with const."}]}
             for i in range(8)]
    write_jsonl(rel / "qa_facts.jsonl", facts)
    manifest = json.loads((rel / "manifest.json").read_text())
    manifest["outputs"].append(output_entry(rel, rel / "qa_facts.jsonl", "chat", len(facts)))
    write_json(rel / "manifest.json", manifest)
    general = root / "general.jsonl"
    write_jsonl(general, [{"prompt": f"Say something about number {i}."} for i in range(3)])
    return rel, prompts, general


def test_a_run_with_distillation_trains_on_the_teacher_and_resumes(tiny_qwen3_dir, tmp_path):
    rel, prompts, general = release_with_facts(tmp_path)
    out = tmp_path / "adapter"
    argv = run_args(tiny_qwen3_dir, rel, prompts, out, "--distill", "facts,general", "--general-prompts",
                    str(general), "--eval-share", "0", sources="qa-facts,general,release-notes")
    first = train([*argv, "--max-steps", "4"])
    info = first["data"]["teacher"]
    assert info["items"] == 8 + first["data"]["general"]["answers_kept"] and info["rows"] > 0 and not info["reused"]
    resumed = train([*argv, "--max-steps", "6", "--resume"])
    assert resumed["resumed_from"].endswith("checkpoint-4") and resumed["steps"] == 6
    assert resumed["data"]["teacher"]["reused"]  # the same teacher pass, from the release's cache
    assert resumed["data"]["token_table"] == first["data"]["token_table"]


def test_a_sequence_the_teacher_did_not_score_trains_on_cross_entropy_alone(tiny_qwen3_dir):
    tok = AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    items = [DistillItem("a", QUESTION, ANSWER)]
    model = lora_model(tiny_qwen3_dir)
    table = build_table(items, score_items(model, tok, items, "0.14.0", 4, 4096, unsloth=False))
    ids, labels = chat_example([{"role": "user", "content": QUESTION}, {"role": "assistant", "content": ANSWER}],
                               tok, THINKING_OFF)
    assert table.rows_for("unknown", labels) is None
    first = next(i for i, label in enumerate(labels) if label != -100)
    shorter = labels[:first] + [-100] + labels[first + 1:]
    assert table.rows_for("a", shorter) is None  # another number of answer tokens: not what the teacher scored
    rows = table.rows_for("a", labels)
    assert [r for r in rows if r != NO_TEACHER] == list(range(table.spans["a"][1]))
