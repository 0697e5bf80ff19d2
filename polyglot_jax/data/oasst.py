"""OASST1: messages (flat, with ``parent_id`` and ``rank``) or message trees to conversations.

Each tree's top-ranked path (the best-ranked live reply at every turn) becomes one conversation.
Self-parents, parent cycles and repeated message ids are bad records, never followed.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator

from polyglot_jax.data import sources
from polyglot_jax.data.sources import DataError, SkipCounter


def _rank_key(reply: dict) -> tuple[bool, float]:
    rank = reply.get("rank")
    numeric = isinstance(rank, int | float) and not isinstance(rank, bool)
    return (not numeric, rank if numeric else 0)


def _best_path(node: dict, children: Callable[[dict], list[dict]], where: str) -> list[dict]:
    """The root-to-leaf path that takes the best-ranked live reply at every turn."""
    path, seen = [node], {id(node)}
    while True:
        replies = [r for r in children(path[-1]) if not r.get("deleted", False)]
        if not replies:
            return path
        best = min(replies, key=_rank_key)
        if id(best) in seen:  # only reachable through repeated message ids
            raise DataError(f"{where}: message {best.get('message_id')!r} repeats in its thread")
        seen.add(id(best))
        path.append(best)


def _tree_replies(where: str) -> Callable[[dict], list[dict]]:
    def replies(node: dict) -> list[dict]:
        found = node.get("replies") or []
        if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
            name = node.get("message_id")
            raise DataError(f"{where}: message {name!r}: 'replies' must be a list of objects")
        return found

    return replies


def _parent_cycle(start: str, parent: dict[str, object], state: dict[str, bool]) -> list[str]:
    """The parent cycle reached from ``start`` ([] if none); marks visited ids in ``state``."""
    chain: list[str] = []
    on_chain: set[str] = set()
    node: object = start
    while isinstance(node, str) and node in parent and node not in state and node not in on_chain:
        chain.append(node)
        on_chain.add(node)
        node = parent[node]
    cycle = chain[chain.index(node) :] if node in on_chain else []
    ok = not cycle and state.get(node, True) if isinstance(node, str) else True
    state.update(dict.fromkeys(chain, ok))
    return cycle


def _flat_threads(
    rows: list[tuple[str, dict]], skip_bad: bool, skipped: SkipCounter | None
) -> Iterator[tuple[str, list[dict]]]:
    """Threads of flat OASST1 messages; self-parents, cycles and repeated ids are bad records."""
    messages: dict[str, tuple[str, dict]] = {}
    for where, row in rows:
        if row["message_id"] in messages:
            first = messages[row["message_id"]][0]
            error = DataError(f"{where}: message_id {row['message_id']!r} repeats {first}")
            sources.skip_or_raise(error, skip_bad, skipped)
            continue
        messages[row["message_id"]] = (where, row)
    parent = {mid: row.get("parent_id") for mid, (_, row) in messages.items()}
    state: dict[str, bool] = {}
    for mid in messages:
        cycle = _parent_cycle(mid, parent, state)
        if cycle:
            where = messages[cycle[0]][0]
            if len(cycle) == 1:
                problem = f"message {cycle[0]!r} is its own parent"
            else:
                shown = " -> ".join(cycle[:4] + (["..."] if len(cycle) > 4 else []))
                problem = f"message {cycle[0]!r} is in a parent cycle ({shown} -> {cycle[0]})"
            sources.skip_or_raise(DataError(f"{where}: {problem}"), skip_bad, skipped)
    by_parent: dict[object, list[dict]] = {}
    for mid, (_, row) in messages.items():
        if state[mid]:
            by_parent.setdefault(row.get("parent_id"), []).append(row)
    for root in by_parent.get(None, []):
        where = messages[root["message_id"]][0]
        children = lambda n: by_parent.get(n["message_id"], [])  # noqa: E731
        yield where, _best_path(root, children, where)


def read_oasst1(
    path: str | pathlib.Path,
    lang: str | None = None,
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
) -> Iterator[dict]:
    """OASST1 messages or message trees; each tree's top-ranked path is one conversation.

    Flat message lines (``message_id``, ``parent_id``, ``role`` prompter/assistant, ``text``,
    ``lang``, ``rank``) are assembled into trees; tree lines (``{"prompt": {..., "replies"}}``)
    are walked directly. Conversations are kept when their first message is in ``lang`` (all
    languages when ``lang`` is None). The conversation id is the root message id. A message
    that is its own parent, a parent cycle or a repeated message id is a :class:`DataError`
    naming the message and its line (skipped and counted with ``skip_bad``).
    """
    roles = {"prompter": "user", "assistant": "assistant"}
    trees, flat = [], []
    for where, row in sources.iter_json_lines(path, skip_bad, skipped):
        if isinstance(row, dict) and isinstance(row.get("prompt"), dict):
            trees.append((where, row["prompt"]))
        elif isinstance(row, dict) and isinstance(row.get("message_id"), str):
            flat.append((where, row))
        else:
            problem = "not an OASST1 message (a string 'message_id') or tree (a 'prompt' object)"
            sources.skip_or_raise(DataError(f"{where}: {problem}"), skip_bad, skipped)

    def threads() -> Iterator[tuple[str, list[dict]]]:
        for where, root in trees:
            try:
                yield where, _best_path(root, _tree_replies(where), where)
            except DataError as e:
                sources.skip_or_raise(e, skip_bad, skipped)
        yield from _flat_threads(flat, skip_bad, skipped)

    def items() -> Iterator[tuple[str, object]]:
        for where, messages in threads():
            root = messages[0]
            if lang is not None and root.get("lang") != lang:
                continue
            yield (
                where,
                {
                    "id": root.get("message_id") or root.get("message_tree_id"),
                    "lang": root.get("lang", lang),
                    "messages": [
                        {"role": roles.get(m.get("role"), m.get("role")), "content": m.get("text")}
                        for m in messages
                    ],
                },
            )

    yield from sources.validated(sources.without_none_ids(items()), None, skip_bad, skipped)
