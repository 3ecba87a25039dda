"""Change events parsed, folded per document, and stream errors translated.

The JSON files in ``tests/unit/data`` are events SecantusDB sent, stored by
``docs/probes/change_streams.py --fixtures tests/unit/data``; the shapes sequence also
holds the document the server held after each write, so applying an update description
is checked against the server itself.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId, json_util
from bson.json_util import JSONOptions
from bson.timestamp import Timestamp
from pymongo.errors import OperationFailure

from migrationkit._errors import ChangeHistoryLostError, ConfigurationError
from migrationkit._normalize.rows import mongo_key
from migrationkit._source.changes import (
    ChangeEvent,
    UpdateDescription,
    apply_update,
    check_history_kept,
    fold_changes,
    parse_event,
    translate_stream_error,
    translating_stream_errors,
)

DATA = Path(__file__).parent / "data"
_TZ_AWARE = JSONOptions(tz_aware=True)


def captured(name: str) -> Any:
    return json_util.loads((DATA / f"change_event_{name}.json").read_text(), json_options=_TZ_AWARE)


SEQUENCE: list[dict[str, Any]] = captured("shapes_sequence")
#: The writes to ``_id: 1`` in the sequence that emitted exactly one event.
STEPS = [
    (previous["after"], step)
    for previous, step in itertools.pairwise(SEQUENCE)
    if len(step["events"]) == 1 and step["events"][0]["documentKey"]["_id"] == 1
]


def event(operation: str, key: Any = 1, **fields: Any) -> ChangeEvent:
    """A hand-made event; only the fields a test needs."""
    return ChangeEvent(
        operation=operation,
        resume_token={"_data": "00"},
        namespace="db.users",
        key=mongo_key(key),
        document_id=key,
        **fields,
    )


def update(key: Any = 1, document: dict[str, Any] | None = None, **fields: Any) -> ChangeEvent:
    return event(
        "update", key, full_document=document, update_description=UpdateDescription(fields)
    )


# --------------------------------------------------------------------------- parsing


def test_an_insert_event_carries_its_key_document_time_and_token() -> None:
    raw = captured("insert")
    parsed = parse_event(raw)
    assert parsed.operation == "insert"
    assert parsed.key == mongo_key(1) == "1"
    assert parsed.full_document == raw["fullDocument"]
    assert isinstance(parsed.cluster_time, Timestamp)
    assert parsed.wall_time is not None
    assert parsed.wall_time.tzinfo is not None
    assert parsed.resume_token == raw["_id"]
    assert parsed.namespace == "probe.shapes"


def test_an_objectid_key_becomes_its_hex_as_mongo_key_makes_it() -> None:
    raw = captured("insert_objectid")
    assert isinstance(raw["documentKey"]["_id"], ObjectId)
    assert parse_event(raw).key == str(raw["documentKey"]["_id"])


def test_an_update_event_carries_its_update_description_and_no_document() -> None:
    parsed = parse_event(captured("update_nested"))
    assert parsed.full_document is None
    assert parsed.update_description == UpdateDescription(
        updated_fields={"address.city": "Lyon", "name": "Ada L."}
    )


def test_an_update_looked_up_carries_the_document_read_at_lookup() -> None:
    parsed = parse_event(captured("update_lookup"))
    assert parsed.full_document == {"_id": 0, "mode": "updateLookup"}


def test_a_delete_event_carries_only_the_key() -> None:
    parsed = parse_event(captured("delete"))
    assert (parsed.operation, parsed.key, parsed.full_document) == ("delete", "1", None)
    assert parsed.update_description is None


@pytest.mark.parametrize("name", ["drop", "drop_invalidate", "rename", "rename_invalidate"])
def test_drop_rename_and_invalidate_events_end_the_stream(name: str) -> None:
    parsed = parse_event(captured(name))
    assert parsed.ends_stream
    assert parsed.key is None


def test_a_document_without_operation_type_is_not_an_event() -> None:
    with pytest.raises(ValueError, match="operationType"):
        parse_event({"_id": {"_data": "00"}, "documentKey": {"_id": 1}})


def test_disambiguated_paths_say_which_numeric_parts_are_field_names() -> None:
    description = UpdateDescription.from_raw(
        {"updatedFields": {"a.0": 1}, "disambiguatedPaths": {"a.0": ["a", "0"]}}
    )
    assert apply_update({"a": {}}, description) == {"a": {"0": 1}}
    assert description.parts("b.1") == ("b", "1")


# --------------------------------------------------------------------------- applying updates


@pytest.mark.parametrize(("before", "step"), STEPS, ids=[step["write"] for _, step in STEPS])
def test_an_event_turns_the_document_before_into_what_the_server_then_held(
    before: dict[str, Any] | None, step: dict[str, Any]
) -> None:
    parsed = parse_event(step["events"][0])
    (net,) = fold_changes([parsed])
    if net.kind == "patch":
        assert before is not None
        (description,) = net.patches
        assert apply_update(before, description) == step["after"]
    elif net.kind == "upsert":
        assert net.document == step["after"]
    else:
        assert step["after"] is None


def test_the_probe_captured_every_kind_of_update_description() -> None:
    descriptions = [parse_event(step["events"][0]).update_description for _, step in STEPS]
    assert any(d and d.removed_fields for d in descriptions)
    assert any(d and d.truncated_arrays for d in descriptions)
    assert any(
        d and any(path.split(".")[-1].isdigit() for path in d.updated_fields) for d in descriptions
    )


def test_setting_past_an_array_end_pads_it_with_nulls() -> None:
    description = UpdateDescription(updated_fields={"tags.3": "d"})
    assert apply_update({"tags": ["a"]}, description) == {"tags": ["a", None, None, "d"]}


def test_setting_a_path_through_a_missing_field_creates_embedded_documents() -> None:
    description = UpdateDescription(updated_fields={"a.b.c": 1})
    assert apply_update({}, description) == {"a": {"b": {"c": 1}}}


def test_removing_an_array_element_leaves_a_null() -> None:
    description = UpdateDescription(removed_fields=("tags.0",))
    assert apply_update({"tags": ["a", "b"]}, description) == {"tags": [None, "b"]}


def test_applying_an_update_leaves_the_given_document_unchanged() -> None:
    document = {"a": {"b": [1, 2]}}
    apply_update(document, UpdateDescription(updated_fields={"a.b.0": 9}))
    assert document == {"a": {"b": [1, 2]}}


# --------------------------------------------------------------------------- folding


def test_the_whole_captured_sequence_folds_to_the_server_s_final_state() -> None:
    events = [parse_event(raw) for step in SEQUENCE for raw in step["events"]]
    net = {change.key: change for change in fold_changes(events)}
    objectid = captured("insert_objectid")["documentKey"]["_id"]
    assert {key: change.kind for key, change in net.items()} == {
        "1": "delete",
        "3": "upsert",
        "4": "upsert",
        str(objectid): "upsert",
        "5": "delete",
        "6": "delete",
    }


def test_insert_update_and_delete_of_one_key_fold_to_a_delete() -> None:
    (net,) = fold_changes([event("insert", full_document={"_id": 1}), update(x=1), event("delete")])
    assert net.kind == "delete"


def test_an_update_without_a_document_applies_to_the_insert_before_it() -> None:
    (net,) = fold_changes([event("insert", full_document={"_id": 1, "x": 0}), update(x=1)])
    assert (net.kind, net.document) == ("upsert", {"_id": 1, "x": 1})


def test_folding_leaves_every_event_as_it_was_so_a_batch_folds_again_the_same() -> None:
    # The updates after the first change the fold's copy of the document in place, the
    # last one inside the object that the one before set: no change may show through to
    # the insert's document or to any update's values.
    removed = UpdateDescription({"address.zip": "00118"}, removed_fields=("address.city",))
    events = [
        event("insert", full_document={"_id": 1, "address": {"city": "Oslo"}, "tags": ["a"]}),
        update(**{"tags.1": "b"}),
        update(address={"city": "Rome", "zip": "00100"}),
        event("update", update_description=removed),
    ]
    before = copy.deepcopy(events)
    first, again = fold_changes(events), fold_changes(events)
    assert first[0].document == {"_id": 1, "address": {"zip": "00118"}, "tags": ["a", "b"]}
    assert again == first
    assert events == before


def test_updates_with_no_whole_document_in_the_batch_fold_to_a_patch_in_order() -> None:
    (net,) = fold_changes([update(x=1), update(y=2)])
    assert net.kind == "patch"
    assert [dict(p.updated_fields) for p in net.patches] == [{"x": 1}, {"y": 2}]


def test_a_looked_up_document_replaces_the_patches_before_it() -> None:
    (net,) = fold_changes([update(x=1), update(document={"_id": 1, "x": 2}, x=2)])
    assert (net.kind, net.document) == ("upsert", {"_id": 1, "x": 2})


def test_an_update_whose_lookup_found_nothing_is_a_patch() -> None:
    (net,) = fold_changes([parse_event(captured("update_lookup_gone"))])
    assert net.kind == "patch"


def test_an_update_after_a_delete_matches_nothing_and_the_key_stays_deleted() -> None:
    (net,) = fold_changes([event("delete"), update(document={"_id": 1}, x=1)])
    assert net.kind == "delete"


def test_an_insert_after_a_delete_brings_the_document_back() -> None:
    (net,) = fold_changes([event("delete"), event("insert", full_document={"_id": 1, "v": 2})])
    assert (net.kind, net.document) == ("upsert", {"_id": 1, "v": 2})


def test_a_replace_sets_the_whole_document() -> None:
    changes = [
        event("insert", full_document={"_id": 1, "a": 1}),
        update(b=2),
        event("replace", full_document={"_id": 1, "c": 3}),
    ]
    (net,) = fold_changes(changes)
    assert net.document == {"_id": 1, "c": 3}


def test_keys_come_out_in_the_order_of_their_last_event() -> None:
    changes = [update(1, x=1), update(2, x=1), update(1, x=2), event("delete", 3)]
    assert [change.key for change in fold_changes(changes)] == ["2", "1", "3"]


def test_the_net_change_carries_the_cluster_time_of_the_key_s_last_event() -> None:
    first = event("insert", full_document={"_id": 1}, cluster_time=Timestamp(10, 1))
    last = event("delete", cluster_time=Timestamp(10, 2))
    (net,) = fold_changes([first, last])
    assert net.cluster_time == Timestamp(10, 2)


@pytest.mark.parametrize("name", ["drop", "rename", "drop_invalidate"])
def test_folding_a_drop_rename_or_invalidate_fails_naming_it_and_the_recovery(name: str) -> None:
    with pytest.raises(ChangeHistoryLostError, match="migrationkit migrate --follow") as caught:
        fold_changes([parse_event(captured("insert")), parse_event(captured(name))])
    assert caught.value.reason == "invalidated"
    assert {"drop": "dropped", "rename": "renamed", "drop_invalidate": "invalidated"}[name] in str(
        caught.value
    )


def test_an_unknown_operation_fails_rather_than_being_skipped() -> None:
    with pytest.raises(ValueError, match="'teleport'"):
        fold_changes([event("teleport")])


def test_schema_events_change_no_document_and_are_skipped() -> None:
    assert fold_changes([event("createIndexes", key=None)]) == []


# --------------------------------------------------------------------------- errors


def failure(details: dict[str, Any]) -> OperationFailure:
    return OperationFailure(details["errmsg"], details["code"], details)


def test_lost_history_becomes_an_error_naming_it_and_the_recovery_command() -> None:
    error = translate_stream_error(failure(captured("error_history_lost")), namespace="db.users")
    assert isinstance(error, ChangeHistoryLostError)
    assert error.reason == "history_lost"
    assert "ChangeStreamHistoryLost, code 286" in str(error)
    assert "oplog no longer holds the saved position" in str(error)
    assert "migrationkit migrate --follow (without --resume)" in str(error)


@pytest.mark.parametrize(
    ("code", "code_name"),
    [(40585, "Location40585"), (136, "CappedPositionLost"), (1, "SomethingNewer")],
)
def test_other_forms_of_lost_history_are_history_lost_too(code: int, code_name: str) -> None:
    message = "resume not possible, as the resume point may no longer be in the oplog"
    details = {"ok": 0.0, "errmsg": message, "code": code, "codeName": code_name}
    error = translate_stream_error(failure(details), namespace="db.users")
    assert isinstance(error, ChangeHistoryLostError)
    assert error.reason == "history_lost"


@pytest.mark.parametrize(
    ("code", "code_name", "message"),
    [
        (260, "InvalidResumeToken", "Attempting to resume a change stream using 'resumeAfter'"),
        (9, "FailedToParse", "resume token string was not a valid hex string"),
        (13, "Unauthorized", "Resume token namespace does not match the watch scope"),
        (280, "ChangeStreamFatalError", "cannot resume"),
    ],
)
def test_a_rejected_token_becomes_an_invalid_token_error(
    code: int, code_name: str, message: str
) -> None:
    details = {"ok": 0.0, "errmsg": message, "code": code, "codeName": code_name}
    error = translate_stream_error(failure(details), namespace="db.users")
    assert isinstance(error, ChangeHistoryLostError)
    assert error.reason == "invalid_token"
    assert f"{code_name}, code {code}" in str(error)


def test_a_standalone_server_becomes_a_configuration_error_naming_the_replica_set() -> None:
    details = {
        "errmsg": "The $changeStream stage is only supported on replica sets",
        "code": 40573,
        "codeName": "Location40573",
    }
    error = translate_stream_error(failure(details), namespace="db.users")
    assert isinstance(error, ConfigurationError)
    assert "--replSet" in str(error)


def test_other_driver_errors_are_not_translated() -> None:
    details = {"errmsg": "not authorized on db to execute command", "code": 13}
    assert translate_stream_error(failure(details), namespace="db.users") is None


def test_the_context_manager_raises_the_translation_from_the_driver_error() -> None:
    original = failure(captured("error_history_lost"))
    with pytest.raises(ChangeHistoryLostError) as caught, translating_stream_errors("db.users"):
        raise original
    assert caught.value.__cause__ is original


def test_the_context_manager_lets_other_driver_errors_through_unchanged() -> None:
    original = failure({"errmsg": "something else", "code": 2})
    with pytest.raises(OperationFailure) as caught, translating_stream_errors("db.users"):
        raise original
    assert caught.value is original


def test_history_pruned_past_the_position_fails_loudly() -> None:
    with pytest.raises(ChangeHistoryLostError, match="pruned") as caught:
        check_history_kept(Timestamp(100, 5), Timestamp(100, 4), namespace="db.users")
    assert caught.value.reason == "history_lost"


@pytest.mark.parametrize("oldest", [Timestamp(100, 4), Timestamp(99, 9), None])
def test_history_kept_back_to_the_position_or_unknown_passes(oldest: Timestamp | None) -> None:
    check_history_kept(oldest, Timestamp(100, 4), namespace="db.users")
