"""The text pipeline: tokenizer, vocabulary, padding, and the two text encoders."""

import random
import string
import unicodedata

import pytest
import torch
from torch import nn

from mmbook.data import make_sort_of_clevr
from mmbook.text import (
    BOS,
    EOS,
    PAD,
    UNK,
    BagOfWordsEncoder,
    LSTMTextEncoder,
    TransformerTextEncoder,
    Vocabulary,
    make_text_encoder,
    pad_batch,
    tokenize,
)
from mmbook.utils import lengths_to_mask


def test_tokenize():
    assert tokenize("How many objects have the same shape as the red object?") == [
        "how", "many", "objects", "have", "the", "same", "shape", "as", "the", "red",
        "object", "?"]
    assert tokenize("A red circle, a blue square.") == ["a", "red", "circle", ",", "a",
                                                          "blue", "square", "."]
    assert tokenize("") == [] and tokenize("   ") == []
    with pytest.raises(TypeError, match="text must be a str"):
        tokenize(["a"])


def _reference_tokenize(text: str) -> list[str]:
    """The same rule written with Unicode properties in the `regex` module: runs of
    letters, marks and numbers (L, M, N), and every other non-space character alone."""
    regex = pytest.importorskip("regex")
    text = unicodedata.normalize("NFC", text).lower()
    return regex.findall(r"[\p{L}\p{M}\p{N}]+|[^\s\p{L}\p{M}\p{N}]", text)


@pytest.mark.parametrize("text", [
    "Naïve café, Straße!",  # the case: it used to split at ï, é and ß
    "Nai\u0308ve cafe\u0301",  # the same words typed with combining accents (NFD)
    "Ελληνικά και русский текст.",
    "नमस्ते दुनिया",  # Devanagari: vowel signs are combining marks
    "日本語のテキスト、句読点。",
    "x² + ٣ = snake_case 3.14 😀",
    "İstanbul ÉCOLE",
])
def test_tokenize_unicode_letters_against_a_reference(text):
    assert tokenize(text) == _reference_tokenize(text)
    assert tokenize(unicodedata.normalize("NFD", text)) == tokenize(text)


def test_tokenize_ascii_fast_path_is_the_general_rule():
    from mmbook.text import _ASCII_TOKEN, _unicode_tokens

    g = random.Random(0)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " \t\n\x0b\x0c"
    for _ in range(300):
        text = "".join(g.choice(alphabet) for _ in range(g.randint(0, 30))).lower()
        assert _ASCII_TOKEN.findall(text) == _unicode_tokens(text) == _reference_tokenize(text)
    assert tokenize("Naïve café, Straße!") == ["naïve", "café", ",", "straße", "!"]


def test_vocabulary_round_trip_on_every_generated_sentence():
    ds = make_sort_of_clevr(30, image_size=32, seed=0)
    vocab = Vocabulary.build(ds.questions + ds.captions)
    assert vocab.itos[:4] == [PAD, UNK, BOS, EOS] and vocab.pad_index == 0
    for text in ds.questions + ds.captions:
        ids = vocab.encode(text, add_bos=True, add_eos=True)
        assert ids[0] == vocab.bos_index and ids[-1] == vocab.eos_index
        assert vocab.decode(ids) == " ".join(tokenize(text))
    assert sum(vocab.unknown_counts.values()) == 0
    assert len(vocab) == len(set(vocab.itos))


def test_build_is_frequency_ordered_and_min_freq():
    vocab = Vocabulary.build(["b a b c", "b a"], min_freq=2)
    assert vocab.itos[4:] == ["b", "a"]  # b 3 times, a twice; c dropped
    assert "c" not in vocab and "a" in vocab


def test_unknown_words_are_counted():
    vocab = Vocabulary.build(["is the red object on the left ?"])
    ids = vocab.encode("Is the purple object on the purple left?")
    assert ids.count(vocab.unk_index) == 2
    assert vocab.unknown_counts == {"purple": 2}
    assert vocab.decode(ids).split().count(UNK) == 2  # <unk> kept: it stands for a word


def test_decode_stops_at_eos_and_checks_ids():
    vocab = Vocabulary(["a", "b"])
    assert vocab.decode([2, 4, 5, 3, 4]) == "a b"
    assert vocab.decode([4, 0, 0]) == "a"
    assert vocab.decode([2, 4, 3], strip_special=False) == f"{BOS} a {EOS}"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([9])
    with pytest.raises(ValueError, match="special tokens"):
        Vocabulary(["a", PAD])


def test_encode_batch_pads_and_refuses_empty_texts():
    vocab = Vocabulary.build(["a b c", "d"])
    ids, lengths = vocab.encode_batch(["a b c", "d"])
    assert ids.tolist() == [[vocab.stoi[t] for t in "abc"], [vocab.stoi["d"], 0, 0]]
    assert lengths.tolist() == [3, 1]
    assert lengths_to_mask(lengths).tolist() == [[True] * 3, [True, False, False]]
    with pytest.raises(ValueError, match=r"texts \[1\] have no tokens"):
        vocab.encode_batch(["a", "  "])
    with pytest.raises(TypeError, match="one string"):
        vocab.encode_batch("a b")


def test_pad_batch_max_len():
    ids, lengths = pad_batch([[1, 2], [3]], max_len=4)
    assert ids.shape == (2, 4) and lengths.tolist() == [2, 1]
    with pytest.raises(ValueError, match="shorter than the longest"):
        pad_batch([[1, 2, 3]], max_len=2)


def _batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 20, (3, 6), generator=g)
    lengths = torch.tensor([6, 2, 4])
    ids[~lengths_to_mask(lengths, 6)] = 0
    return ids, lengths


def test_lstm_encoder_ignores_padding_and_matches_nn_lstm():
    torch.manual_seed(0)
    enc = LSTMTextEncoder(20, embed_dim=5, hidden_size=7).eval()
    ids, lengths = _batch()
    z = enc(ids, lengths)
    for n in range(3):  # each sentence alone, unpadded, through plain nn.LSTM
        e = enc.embedding(ids[n, :lengths[n]])[None]
        _, (h, _) = enc.lstm(e)
        torch.testing.assert_close(z[n], h[0, 0])
    states, mask = enc(ids, lengths, return_sequence=True)
    assert states.shape == (3, 6, 7) and torch.equal(mask, lengths_to_mask(lengths, 6))
    assert states[~mask].abs().max() == 0
    torch.testing.assert_close(states[torch.arange(3), lengths - 1], z)


def test_transformer_encoder_against_nn_transformer_encoder():
    torch.manual_seed(0)
    enc = TransformerTextEncoder(20, embed_dim=8, num_heads=2, num_layers=2,
                                 dim_feedforward=16, max_len=10).eval()
    ids, lengths = _batch()
    states, mask = enc(ids, lengths, return_sequence=True)
    # the same weights in a fresh nn.TransformerEncoder, fed torch's padding mask
    layer = nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True)
    ref = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    ref.load_state_dict(enc.encoder.state_dict())
    x = enc.embedding(ids) + enc.position[:6]
    want = ref(x, src_key_padding_mask=~lengths_to_mask(lengths, 6))
    torch.testing.assert_close(states[mask], want[mask])
    # padding never changes the real tokens: each sentence alone, unpadded
    for n in range(3):
        alone = enc(ids[n:n + 1, :lengths[n]], lengths[n:n + 1], return_sequence=True)[0]
        torch.testing.assert_close(states[n, :lengths[n]], alone[0], atol=1e-5, rtol=1e-4)
    pooled = enc(ids, lengths)
    torch.testing.assert_close(pooled, torch.stack([states[n, :lengths[n]].mean(0)
                                                    for n in range(3)]))


def test_bag_of_words_equals_nn_embedding_bag_mean():
    torch.manual_seed(0)
    enc = BagOfWordsEncoder(20, embed_dim=5)
    ids, lengths = _batch()
    bag = nn.EmbeddingBag.from_pretrained(enc.embedding.weight.detach(), mode="mean")
    real = torch.cat([ids[n, :lengths[n]] for n in range(len(ids))])  # the real tokens only
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
    torch.testing.assert_close(enc(ids, lengths), bag(real, offsets))
    torch.testing.assert_close(enc(ids, lengths.tolist()), enc(ids, lengths))  # a list is fine
    words, mask = enc(ids, lengths, return_sequence=True)
    assert (words[~mask] == 0).all() and torch.equal(mask, lengths_to_mask(lengths, 6))
    # the order of the words is lost: a permuted sentence has the same vector
    perm = ids.clone()
    perm[0, :lengths[0]] = ids[0, :lengths[0]].flip(0)
    torch.testing.assert_close(enc(perm, lengths)[0], enc(ids, lengths)[0])


def test_make_text_encoder():
    assert isinstance(make_text_encoder("lstm", 20, 4, 6), LSTMTextEncoder)
    bow = make_text_encoder("bow", 20, 4, 6)
    assert isinstance(bow, BagOfWordsEncoder) and bow.out_features == 6
    with pytest.raises(ValueError, match="'lstm' or 'bow'"):
        make_text_encoder("gru", 20)


@pytest.mark.parametrize("enc", [LSTMTextEncoder(20, 4, 6), TransformerTextEncoder(20, 4, 2),
                                 BagOfWordsEncoder(20, 4)])
def test_encoders_refuse_bad_input(enc):
    ids, lengths = _batch()
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, L=6\]"):
        enc(ids, torch.tensor([6, 0, 4]))
    with pytest.raises(ValueError, match="ids must lie in"):
        enc(ids + 20, lengths)
    with pytest.raises(ValueError, match="ids must be integer"):
        enc(ids.float(), lengths)
    with pytest.raises(ValueError, match="lengths"):
        enc(ids, lengths[:2])
    # an empty batch: it failed inside torch ("cannot reshape tensor of 0 elements",
    # "Cannot pack empty tensors"); now the argument and what is expected are named
    for train in (True, False):
        with pytest.raises(ValueError, match=r"ids is an empty batch \(shape \(0, 6\)\): "
                                             r"expected at least one sentence"):
            enc.train(train)(ids[:0], lengths[:0])
