"""modelcrypt.transformers: encrypted Hugging Face directories loaded into transformers in memory.

Tiny Llama- (tied embeddings), GPT-2- and BERT-style models are built from configs here, saved by
transformers in several safetensors shards, encrypted with the CLI / encrypt_directory and with
modelcrypt.transformers.save_pretrained, and loaded back: same logits as the plain model, tensors
that are views of modelcrypt's decrypted buffers, the same tokenizer, the failures of a wrong key,
a missing, modified or swapped shard, and nothing written to disk while loading (strace). Offline.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: no network at all
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import shutil
import subprocess
import sys

import pytest

import modelcrypt
from conftest import require
from s3_server import s3  # noqa: F401 (the fixture: an S3-compatible server on 127.0.0.1)

torch = require("torch")
transformers = require("transformers")
tokenizers = require("tokenizers")
require("safetensors")
import modelcrypt.transformers as mchf  # noqa: E402

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
SHARD = "40KB"
SENTENCES = ["the quick brown fox jumps over the lazy dog", "a lazy dog sleeps", "quick foxes are brown",
             "hello world from modelcrypt", "encrypted models load in memory"]
IDS = torch.tensor([[1, 5, 9, 3, 17, 2, 8, 4], [7, 7, 1, 0, 12, 30, 2, 6]])


def _llama():
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   tie_word_embeddings=True)
    return transformers.LlamaForCausalLM(cfg)


def _gpt2():
    cfg = transformers.GPT2Config(vocab_size=64, n_embd=32, n_layer=3, n_head=4, n_positions=64, bos_token_id=0,
                                  eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg)


def _bert():
    cfg = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=64)
    return transformers.BertModel(cfg)


BUILDERS = {"llama": _llama, "gpt2": _gpt2, "bert": _bert}


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[BOS]"]))
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                                bos_token="[BOS]", model_max_length=64)


def _out(model):
    with torch.no_grad():
        out = model(input_ids=IDS)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{kind: (model, plain directory, expected output)}; the llama directory holds a tokenizer too."""
    root = tmp_path_factory.mktemp("hf")
    out = {}
    for i, (kind, build) in enumerate(BUILDERS.items()):
        torch.manual_seed(i)
        model = build().eval()
        plain = root / f"{kind}-plain"
        model.save_pretrained(plain, max_shard_size=SHARD)
        if kind == "llama":
            _tokenizer().save_pretrained(plain)
        out[kind] = (model, plain, _out(model))
    return out


@pytest.fixture(scope="module")
def encrypted(models, tmp_path_factory):
    """{kind: encrypted directory}: llama through the CLI, the others through encrypt_directory."""
    root = tmp_path_factory.mktemp("hfenc")
    keyfile = root / "k.key"
    keyfile.write_text(KEY.hex() + "\n")
    os.chmod(keyfile, 0o600)
    out = {}
    for kind, (_, plain, _) in models.items():
        dst = root / f"{kind}.enc"
        if kind == "llama":
            r = subprocess.run([sys.executable, "-m", "modelcrypt", "encrypt", str(plain), "-o", str(dst),
                                "--key-file", str(keyfile)], capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr
        else:
            modelcrypt.encrypt_directory(plain, dst, KEY)
        out[kind] = dst
    return out


def _shards(directory):
    return sorted(n for n in os.listdir(directory) if n.startswith("model-") and n.endswith(".safetensors"))


@pytest.fixture
def decrypted_buffers(monkeypatch):
    """The (address, length) of every buffer modelcrypt.transformers decrypts a member into: a spy
    around the real EncryptedModelDirectory.read (which still does all the work)."""
    import numpy as np

    from modelcrypt.transformers._directory import EncryptedModelDirectory

    ranges = []
    real = EncryptedModelDirectory.read

    def read(self, rel):
        buf = real(self, rel)
        whole = np.frombuffer(buf, dtype=np.uint8)
        ranges.append((whole.ctypes.data, whole.nbytes))
        return buf

    monkeypatch.setattr(EncryptedModelDirectory, "read", read)
    return ranges


def _outside_decrypted_buffers(model, ranges):
    """Names of parameters whose memory is not inside one of the decrypted buffers."""
    out = []
    for name, p in model.named_parameters():
        lo, hi = p.data_ptr(), p.data_ptr() + p.numel() * p.element_size()
        if not any(start <= lo and hi <= start + n for start, n in ranges):
            out.append(name)
    return out


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_encrypted_directory_loads_with_the_same_outputs(models, encrypted, kind, decrypted_buffers):
    model, plain, expected = models[kind]
    assert len(_shards(plain)) >= 3  # several shards
    loaded = mchf.from_pretrained(encrypted[kind], KEY)
    assert type(loaded) is type(model)
    assert not loaded.training
    assert torch.equal(_out(loaded), expected)
    # no second copy of the weights: every parameter points into a decrypted buffer
    assert _outside_decrypted_buffers(loaded, decrypted_buffers) == []
    if kind == "llama":  # tied embeddings re-tied, rotary buffers initialised as transformers does
        assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
        assert torch.equal(loaded.model.rotary_emb.inv_freq, model.model.rotary_emb.inv_freq)
        assert loaded.generation_config.to_dict() == model.generation_config.to_dict()


def test_dtype_conversion_copies(encrypted, decrypted_buffers):
    """With a dtype conversion the weights are copies (documented); without one they are views."""
    same = mchf.from_pretrained(encrypted["gpt2"], KEY, dtype=torch.float32)
    assert _outside_decrypted_buffers(same, decrypted_buffers) == []
    converted = mchf.from_pretrained(encrypted["gpt2"], KEY, dtype=torch.float16)
    names = [n for n, _ in converted.named_parameters()]
    assert _outside_decrypted_buffers(converted, decrypted_buffers) == names


def test_model_class_and_dtype(models, encrypted):
    model, plain, expected = models["llama"]
    auto = mchf.from_pretrained(encrypted["llama"], KEY, model_class=transformers.AutoModelForCausalLM)
    assert type(auto) is transformers.LlamaForCausalLM and torch.equal(_out(auto), expected)
    base = mchf.from_pretrained(encrypted["llama"], KEY, model_class=transformers.LlamaModel)
    with torch.no_grad():
        assert torch.equal(base(input_ids=IDS).last_hidden_state, model.model(input_ids=IDS).last_hidden_state)
    half = mchf.from_pretrained(encrypted["llama"], KEY, dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in half.parameters())
    reference = transformers.AutoModelForCausalLM.from_pretrained(plain, dtype=torch.bfloat16)  # transformers' own
    assert torch.equal(_out(half), _out(reference))
    also = mchf.from_pretrained(encrypted["llama"], KEY, torch_dtype=torch.bfloat16)
    assert torch.equal(_out(also), _out(half))


def test_tokenizer_round_trip(models, encrypted):
    _, plain, _ = models["llama"]
    reference = transformers.AutoTokenizer.from_pretrained(plain)
    tok = mchf.tokenizer_from_pretrained(encrypted["llama"], KEY)
    for text in SENTENCES + ["unknown words here", "the dog"]:
        assert tok(text)["input_ids"] == reference(text)["input_ids"]
        ids = reference(text)["input_ids"]
        assert tok.decode(ids) == reference.decode(ids)
    assert (tok.unk_token, tok.pad_token, tok.bos_token) == ("[UNK]", "[PAD]", "[BOS]")
    assert tok.model_max_length == 64 and tok.get_vocab() == reference.get_vocab()
    batch = tok(SENTENCES[:2], padding=True)["input_ids"]
    assert batch == reference(SENTENCES[:2], padding=True)["input_ids"]


def test_save_pretrained_writes_what_the_cli_and_transformers_read(models, tmp_path, decrypted_buffers):
    model, plain, expected = models["llama"]
    reference_tok = transformers.AutoTokenizer.from_pretrained(plain)
    loaded = mchf.from_pretrained(
        mchf.save_pretrained(model, tmp_path / "first.enc", KEY) and tmp_path / "first.enc", KEY)
    names = mchf.save_pretrained(loaded, tmp_path / "out.enc", KEY, max_shard_size=SHARD, tokenizer=reference_tok)
    out = tmp_path / "out.enc"
    assert sorted(os.listdir(out)) == sorted(names + [".modelcrypt-manifest"])
    assert "model.safetensors.index.json" in names and len(_shards(out)) >= 3
    assert {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"} <= set(names)
    for name in names:  # every file encrypted
        assert modelcrypt.is_encrypted(out / name)
    back = mchf.from_pretrained(out, KEY)
    assert torch.equal(_out(back), expected)
    assert _outside_decrypted_buffers(back, decrypted_buffers) == []
    tok = mchf.tokenizer_from_pretrained(out, KEY)
    assert [tok(s)["input_ids"] for s in SENTENCES] == [reference_tok(s)["input_ids"] for s in SENTENCES]
    # the CLI decrypts it into a normal Hugging Face directory
    keyfile = tmp_path / "k.key"
    keyfile.write_text(KEY.hex() + "\n")
    os.chmod(keyfile, 0o600)
    r = subprocess.run([sys.executable, "-m", "modelcrypt", "decrypt", str(out), "-o", str(tmp_path / "dec"),
                        "--key-file", str(keyfile)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    plain_again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "dec")
    assert torch.equal(_out(plain_again.eval()), expected)
    tok_again = transformers.AutoTokenizer.from_pretrained(tmp_path / "dec")
    assert [tok_again(s)["input_ids"] for s in SENTENCES] == [reference_tok(s)["input_ids"] for s in SENTENCES]
    # tied weights were saved once, as transformers saves them
    from safetensors import safe_open

    saved = set()
    for shard in _shards(tmp_path / "dec"):
        with safe_open(str(tmp_path / "dec" / shard), framework="pt") as f:
            saved |= set(f.keys())
    assert "lm_head.weight" not in saved and "model.embed_tokens.weight" in saved
    with pytest.raises(FileExistsError):
        mchf.save_pretrained(model, out, KEY)
    mchf.save_pretrained(model, out, KEY, overwrite=True)  # one file now (default max_shard_size)
    assert "model.safetensors" in os.listdir(out) and not _shards(out)
    assert torch.equal(_out(mchf.from_pretrained(out, KEY)), expected)


@pytest.mark.parametrize("kind", ["gpt2", "bert"])
def test_save_pretrained_other_architectures(models, tmp_path, kind):
    model, _, expected = models[kind]
    mchf.save_pretrained(model, tmp_path / "m.enc", KEY, max_shard_size=SHARD)
    assert len(_shards(tmp_path / "m.enc")) >= 3
    assert torch.equal(_out(mchf.from_pretrained(tmp_path / "m.enc", KEY)), expected)
    modelcrypt.decrypt_directory(tmp_path / "m.enc", tmp_path / "dec", KEY)
    assert torch.equal(_out(type(model).from_pretrained(tmp_path / "dec").eval()), expected)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_wrong_key(encrypted):
    with pytest.raises(modelcrypt.KeyMismatchError):
        mchf.from_pretrained(encrypted["llama"], OTHER_KEY)
    with pytest.raises(modelcrypt.KeyMismatchError):
        mchf.tokenizer_from_pretrained(encrypted["llama"], OTHER_KEY)


def test_missing_shard(encrypted, tmp_path):
    d = _copy(encrypted["gpt2"], tmp_path / "m.enc")
    os.unlink(d / _shards(d)[1])
    with pytest.raises(modelcrypt.SetMismatchError, match="missing"):
        mchf.from_pretrained(d, KEY)


def test_tampered_shard(encrypted, tmp_path):
    d = _copy(encrypted["gpt2"], tmp_path / "m.enc")
    shard = d / _shards(d)[1]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(modelcrypt.AuthenticationError):
        mchf.from_pretrained(d, KEY)


def test_shard_from_another_save(models, encrypted, tmp_path):
    model, _, _ = models["gpt2"]
    d = _copy(encrypted["gpt2"], tmp_path / "m.enc")
    mchf.save_pretrained(model, tmp_path / "other.enc", KEY, max_shard_size=SHARD)  # same names, another set
    name = _shards(d)[0]
    shutil.copyfile(tmp_path / "other.enc" / name, d / name)
    with pytest.raises(modelcrypt.SetMismatchError, match="another"):
        mchf.from_pretrained(d, KEY)


def test_shards_swapped(encrypted, tmp_path):
    d = _copy(encrypted["bert"], tmp_path / "m.enc")
    a, b = _shards(d)[:2]
    os.rename(d / a, d / "tmp")
    os.rename(d / b, d / a)
    os.rename(d / "tmp", d / b)
    with pytest.raises(modelcrypt.SetMismatchError, match="renamed"):
        mchf.from_pretrained(d, KEY)


def test_added_file_and_missing_manifest(encrypted, tmp_path):
    d = _copy(encrypted["bert"], tmp_path / "m.enc")
    (d / "extra.bin").write_bytes(b"x" * 10)
    with pytest.raises(modelcrypt.SetMismatchError, match="not listed"):
        mchf.from_pretrained(d, KEY)
    os.unlink(d / "extra.bin")
    os.unlink(d / ".modelcrypt-manifest")
    with pytest.raises(modelcrypt.SetMismatchError, match="manifest"):
        mchf.from_pretrained(d, KEY)


def test_bad_arguments_and_slow_tokenizers(encrypted, models, tmp_path):
    with pytest.raises(ValueError, match="offload_folder"):
        mchf.from_pretrained(encrypted["llama"], KEY, offload_folder=str(tmp_path))
    with pytest.raises(TypeError, match="dtype or torch_dtype"):
        mchf.from_pretrained(encrypted["llama"], KEY, dtype=torch.float32, torch_dtype=torch.float32)
    with pytest.raises(NotADirectoryError):
        mchf.from_pretrained(tmp_path / "nothing", KEY)
    with pytest.raises(TypeError, match="PreTrainedModel"):
        mchf.save_pretrained(torch.nn.Linear(2, 2), tmp_path / "x.enc", KEY)
    # a directory with a slow (vocab file) tokenizer only: a clear error
    plain = tmp_path / "slow"
    plain.mkdir()
    (plain / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    (plain / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizer"}')
    modelcrypt.encrypt_directory(plain, tmp_path / "slow.enc", KEY)
    with pytest.raises(modelcrypt.FormatError, match="vocab.txt"):
        mchf.tokenizer_from_pretrained(tmp_path / "slow.enc", KEY)
    # a model class whose weights the checkpoint lacks (transformers would initialise them randomly)
    with pytest.raises(modelcrypt.FormatError, match="lacks .* BertForSequenceClassification"):
        mchf.from_pretrained(encrypted["bert"], KEY, model_class=transformers.BertForSequenceClassification)
    with pytest.raises(modelcrypt.FormatError, match="config.json"):
        mchf.from_pretrained(tmp_path / "slow.enc", KEY)


def test_importable_without_transformers():
    code = ("import sys; sys.modules['transformers'] = None\n"
            "import modelcrypt.transformers as m\n"
            "try:\n    m.from_pretrained('x', bytes(32))\n"
            "except ImportError as e:\n    print('MSG', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert 'pip install "modelcrypt[transformers]"' in r.stdout


def test_load_under_strace_writes_nothing(tmp_path):
    from test_no_disk import _run_case

    setup = """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import torch, transformers, tokenizers
    import modelcrypt, modelcrypt.transformers as mchf
    from tokenizers import models, pre_tokenizers, trainers
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    t = tokenizers.Tokenizer(models.WordLevel(unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.train_from_iterator(["a b c d", "b c d e"], trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]")
    mchf.save_pretrained(model, P("m.enc"), key, max_shard_size="40KB", tokenizer=tok)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    # warm-up on the plain model: transformers' own from_pretrained from a state dict in memory
    warm = transformers.LlamaForCausalLM.from_pretrained(None, config=cfg, state_dict=model.state_dict())
    with torch.no_grad():
        warm(input_ids=ids)
    transformers.PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]")("a b")
    """
    measured = """
    loaded = mchf.from_pretrained(P("m.enc"), key)
    tok2 = mchf.tokenizer_from_pretrained(P("m.enc"), key)
    encoded = tok2("a b c z")["input_ids"]
    with torch.no_grad():
        got = loaded(input_ids=ids).logits
    """
    check = """
    assert torch.equal(got, expected)
    assert encoded == tok("a b c z")["input_ids"]
    """
    _run_case(tmp_path, "transformers", setup, measured, check,
              ["config.json", "model.safetensors.index.json", "model-00001-of-00003.safetensors",
               "tokenizer.json", ".modelcrypt-manifest"])


def test_config_overrides_and_loading_info(models, encrypted):
    _, _, expected = models["llama"]
    model, info = mchf.from_pretrained(encrypted["llama"], KEY, use_cache=False, output_loading_info=True)
    assert model.config.use_cache is False and torch.equal(_out(model), expected)
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_signed_directory_and_trusted_signers(models, tmp_path):
    model, _, expected = models["gpt2"]
    signer = modelcrypt.generate_signing_key()
    mchf.save_pretrained(model, tmp_path / "signed.enc", KEY, max_shard_size=SHARD, signing_key=signer)
    mchf.save_pretrained(model, tmp_path / "unsigned.enc", KEY, max_shard_size=SHARD)
    loaded = mchf.from_pretrained(tmp_path / "signed.enc", KEY, trusted_signers=[signer.public_key])
    assert torch.equal(_out(loaded), expected)
    with pytest.raises(modelcrypt.SignatureError):
        mchf.from_pretrained(tmp_path / "signed.enc", KEY, trusted_signers=[modelcrypt.generate_signing_key()])
    with pytest.raises(modelcrypt.SignatureError):
        mchf.from_pretrained(tmp_path / "unsigned.enc", KEY, trusted_signers=[signer.public_key])


def test_from_s3(models, encrypted, tmp_path, s3):  # noqa: F811 (the fixture)
    require("s3fs")
    from test_loader_urls import _upload

    _, options = s3
    model, _, expected = models["llama"]
    url = _upload(options, encrypted["llama"], "hf/llama.enc")
    loaded = mchf.from_pretrained(url, KEY, storage_options=options)
    assert torch.equal(_out(loaded), expected)
    tok = mchf.tokenizer_from_pretrained(url + "/", KEY, storage_options=options)
    assert tok(SENTENCES[0])["input_ids"] == mchf.tokenizer_from_pretrained(encrypted["llama"], KEY)(SENTENCES[0])["input_ids"]
    with pytest.raises(modelcrypt.KeyMismatchError):
        mchf.from_pretrained(url, OTHER_KEY, storage_options=options)
    with pytest.raises(ValueError, match="storage_options"):
        mchf.from_pretrained(encrypted["llama"], KEY, storage_options=options)
    # a shard missing at the URL: named as missing
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    shard = _shards(encrypted["llama"])[0]
    fs.rm(f"{url[len('s3://'):]}/{shard}")
    with pytest.raises(modelcrypt.SetMismatchError, match="missing"):
        mchf.from_pretrained(url, KEY, storage_options=options)


def test_bfloat16_checkpoint_loads_as_views(models, tmp_path, decrypted_buffers):
    model, plain, _ = models["llama"]
    half = transformers.AutoModelForCausalLM.from_pretrained(plain, dtype=torch.bfloat16).eval()
    mchf.save_pretrained(half, tmp_path / "bf16.enc", KEY, max_shard_size="20KB")
    loaded = mchf.from_pretrained(tmp_path / "bf16.enc", KEY)
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    assert loaded.config.dtype == torch.bfloat16
    assert _outside_decrypted_buffers(loaded, decrypted_buffers) == []
    assert torch.equal(_out(loaded), _out(half))
    modelcrypt.decrypt_directory(tmp_path / "bf16.enc", tmp_path / "dec", KEY)
    again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "dec").eval()
    assert again.dtype == torch.bfloat16 and torch.equal(_out(again), _out(half))
