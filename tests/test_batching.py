from collections import Counter

from contrafit.data.batching import length_sorted_batches, m_per_class_batches, random_batches


def test_random_batches_cover_every_index_once_and_are_seeded():
    b = random_batches(10, 4, seed=1)
    assert sorted(i for x in b for i in x) == list(range(10)) and [len(x) for x in b] == [4, 4, 2]
    assert b == random_batches(10, 4, seed=1) and b != random_batches(10, 4, seed=2)


def test_m_per_class_gives_every_anchor_a_positive_and_fills_the_batch():
    labels = [0] * 16 + [1] * 16 + [2] * 3 + [3] * 1 + [4] * 20 + [5] * 8
    batches = m_per_class_batches(labels, batch_size=8, m=2, seed=0)
    assert len(batches) == -(-len(labels) // 8)
    for batch in batches:
        counts = Counter(labels[i] for i in batch)
        assert len(batch) == 8 and len(counts) == 4 and set(counts.values()) == {2}
    assert batches == m_per_class_batches(labels, 8, 2, seed=0)


def test_m_per_class_with_two_classes_splits_the_batch_evenly():
    labels = [0] * 16 + [1] * 16
    for batch in m_per_class_batches(labels, batch_size=8, m=2, seed=3):
        assert Counter(labels[i] for i in batch) == {0: 4, 1: 4}
        assert len(set(batch)) == 8  # enough examples: no repeats within a batch


def test_length_sorted_batches_group_similar_lengths():
    lengths = [5, 50, 7, 48, 6, 49]
    assert length_sorted_batches(lengths, 3) == [[1, 5, 3], [2, 4, 0]]


def test_floor_epoch_batches_leave_out_the_last_partial_batch():
    labels = [0] * 18 + [1] * 18  # 16 texts a class plus 2 label texts each
    assert len(m_per_class_batches(labels, 16, 8, seed=0)) == 3
    floor = m_per_class_batches(labels, 16, 8, seed=0, drop_last=True)
    assert len(floor) == 2 and all(len(b) == 16 for b in floor)
    assert len(m_per_class_batches([0, 1, 0], 16, 8, seed=0, drop_last=True)) == 1
    assert len(random_batches(36, 16, seed=0, drop_last=True)) == 2
