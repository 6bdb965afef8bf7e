"""One contract for the stored log, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select

from quotepart.errors import (
    InputError,
    MalformedEntryError,
    NotFoundError,
    OutOfRangeError,
    SignatureError,
    StorageError,
    UnknownAuthorError,
)
from quotepart.ids import Digest, PartyId
from quotepart.log import (
    Checkpoint,
    SigningKey,
    leaf_hash,
    sign_entry,
    verify_consistency,
    verify_inclusion,
)
from quotepart.log.kinds import ContributionRecorded, PartyRegistered
from quotepart.store.engine import head_revision, migrate, schema_revision
from quotepart.store.schema import PROJECTION_TABLES, checkpoints, log_entries, metadata
from quotepart.workspace import Workspace, init_workspace, open_workspace
from tests.conftest import FakeClock
from tests.helpers import asset_body, populate


def count(ws: Workspace, table: object) -> int:
    with ws.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def snapshot(ws: Workspace) -> dict[str, list[tuple[object, ...]]]:
    with ws.store.engine.connect() as conn:
        return {
            table.name: [
                tuple(row)
                for row in conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in PROJECTION_TABLES
        }


def test_appends_get_consecutive_indexes_and_one_checkpoint_per_call(ws: Workspace) -> None:
    party = ws.register_party("Alice")
    indexes = ws.append_many([(asset_body(n), party) for n in range(5)])
    assert indexes == [1, 2, 3, 4, 5]
    assert ws.store.tree_size() == 6
    assert [size for size, _, _ in ws.store.checkpoint_notes()] == [1, 6]


def test_reappending_an_identical_entry_is_a_no_op_returning_its_index(ws: Workspace) -> None:
    party = ws.register_party("Alice")
    entry = sign_entry(
        asset_body(1), origin=ws.origin, author=party, key=ws.signing_key(party), clock=ws.clock
    )
    assert ws.append_signed([entry.canonical]) == [1]
    assert ws.append_signed([entry.canonical]) == [1]
    other = sign_entry(
        asset_body(2), origin=ws.origin, author=party, key=ws.signing_key(party), clock=ws.clock
    )
    assert ws.append_signed([entry.canonical, other.canonical, other.canonical]) == [1, 2, 2]
    assert ws.store.tree_size() == 3
    assert count(ws, checkpoints) == 3  # the no-op call signed nothing new


def test_every_inclusion_and_consistency_proof_verifies_against_signed_checkpoints(
    ws: Workspace,
) -> None:
    populate(ws, assets=7)
    notes = ws.store.checkpoint_notes()
    roots = {size: Checkpoint.open(note, ws.verifier).root_hash for size, _, note in notes}
    size = ws.store.tree_size()
    assert max(roots) == size
    assert len(roots) == size
    for tree_size, root in roots.items():
        assert ws.store.root_hash(tree_size) == root
        for index in range(tree_size):
            proof = ws.store.inclusion_proof(index, tree_size)
            _, data = ws.store.entry(index)
            assert proof.leaf_hash == leaf_hash(data)
            verify_inclusion(leaf_hash(data), index, tree_size, proof.proof, root)
        for old_size, old_root in roots.items():
            if old_size <= tree_size:
                consistency = ws.store.consistency_proof(old_size, tree_size)
                verify_consistency(old_size, tree_size, old_root, root, consistency.proof)


def test_a_refused_entry_leaves_nothing_of_its_batch(ws: Workspace) -> None:
    party = ws.register_party("Alice")
    before = snapshot(ws), ws.store.tree_size(), count(ws, checkpoints)
    missing_asset = Digest.of_bytes(b"never registered")
    with pytest.raises(NotFoundError, match="unknown asset"):
        ws.append_many(
            [
                (asset_body(1), party),
                (ContributionRecorded(party, missing_asset, "data", Fraction(1)), party),
            ]
        )
    assert (snapshot(ws), ws.store.tree_size(), count(ws, checkpoints)) == before
    assert count(ws, log_entries) == 1
    ws.verify()


def test_an_unregistered_author_is_refused(ws: Workspace) -> None:
    stranger, key = PartyId.new(ws.clock), SigningKey.generate()
    entry = sign_entry(asset_body(1), origin=ws.origin, author=stranger, key=key, clock=ws.clock)
    with pytest.raises(UnknownAuthorError, match="not registered"):
        ws.append_signed([entry.canonical])
    assert ws.store.tree_size() == 0


def test_a_signature_by_the_wrong_key_is_refused(ws: Workspace) -> None:
    party = ws.register_party("Alice")
    forged = sign_entry(
        asset_body(1), origin=ws.origin, author=party, key=SigningKey.generate(), clock=ws.clock
    )
    with pytest.raises(SignatureError, match="not by"):
        ws.append_signed([forged.canonical])
    assert ws.store.tree_size() == 1


def test_a_party_keeping_its_own_key_registers_and_signs_elsewhere(ws: Workspace) -> None:
    own_key = SigningKey.generate()
    party = PartyId.new(ws.clock)
    registration = sign_entry(
        PartyRegistered(party, "Remote Clinic", ("contributor",), own_key.public),
        origin=ws.origin,
        author=party,
        key=own_key,
        clock=ws.clock,
    )
    asset = sign_entry(asset_body(9), origin=ws.origin, author=party, key=own_key, clock=ws.clock)
    assert ws.append_signed([registration.canonical, asset.canonical]) == [0, 1]
    with pytest.raises(NotFoundError, match="holds no key"):
        ws.signing_key(party)
    assert [record.name for record in ws.parties()] == ["Remote Clinic"]
    ws.verify()


def test_a_party_cannot_be_registered_by_someone_else(ws: Workspace) -> None:
    operator = ws.register_party("Operator")
    victim_key = SigningKey.generate()
    victim = PartyId.new(ws.clock)
    entry = sign_entry(
        PartyRegistered(victim, "Victim", ("contributor",), victim_key.public),
        origin=ws.origin,
        author=operator,
        key=ws.signing_key(operator),
        clock=ws.clock,
    )
    with pytest.raises(UnknownAuthorError, match="must sign its own registration"):
        ws.append_signed([entry.canonical])


def test_registering_the_same_content_twice_returns_the_same_asset(ws: Workspace) -> None:
    party = ws.register_party("Alice")
    first = ws.register_asset(b"same bytes", asset_kind="dataset", name="a", by=party)
    size = ws.store.tree_size()
    assert ws.register_asset(b"same bytes", asset_kind="dataset", name="b", by=party) == first
    assert ws.store.tree_size() == size


def test_rebuild_equals_live(ws: Workspace) -> None:
    populate(ws)
    live = snapshot(ws)
    assert ws.rebuild() == ws.store.tree_size()
    assert snapshot(ws) == live
    ws.verify()


def test_indexes_and_sizes_beyond_the_log_are_refused(ws: Workspace) -> None:
    populate(ws, assets=1)
    size = ws.store.tree_size()
    with pytest.raises(OutOfRangeError, match="beyond the log"):
        ws.store.entry(size)
    with pytest.raises(OutOfRangeError, match="not in a tree"):
        ws.store.inclusion_proof(size)
    with pytest.raises(OutOfRangeError, match="larger than the log"):
        ws.store.inclusion_proof(0, size + 1)
    with pytest.raises(OutOfRangeError, match="larger than the log"):
        ws.store.consistency_proof(1, size + 1)
    with pytest.raises(OutOfRangeError, match="between 0 and"):
        ws.store.consistency_proof(size, size - 1)


def test_migrations_create_exactly_the_declared_schema(ws: Workspace) -> None:
    with ws.store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def _alembic(conn: object) -> Config:
    config = Config()
    config.set_main_option("script_location", "quotepart.store:migrations")
    config.attributes["connection"] = conn
    return config


def test_the_head_revision_known_without_alembic_is_alembics_head(ws: Workspace) -> None:
    with ws.store.engine.connect() as conn:
        assert ScriptDirectory.from_config(_alembic(conn)).get_current_head() == head_revision()
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
    assert schema_revision(ws.store.engine) == head_revision()


def test_an_older_schema_is_migrated_to_the_head(ws: Workspace) -> None:
    engine = ws.store.engine
    with engine.connect() as conn, conn.begin():
        command.downgrade(_alembic(conn), "0003")
    assert schema_revision(engine) == "0003"
    migrate(engine)
    assert schema_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_reopening_keeps_everything(
    ws: Workspace, database_url: str | None, clock: FakeClock
) -> None:
    populate(ws, assets=2)
    before = snapshot(ws), ws.store.latest_checkpoint()
    ws.close()
    with open_workspace(ws.path, database_url=database_url, clock=clock) as again:
        assert (snapshot(again), again.store.latest_checkpoint()) == before
        again.verify()


def test_a_database_of_another_log_is_refused(
    ws: Workspace, tmp_path: Path, database_url: str | None, clock: FakeClock
) -> None:
    populate(ws, assets=1)
    if database_url is None:
        other = init_workspace(tmp_path / "other", clock=clock)
        other.close()
        url = ws.database_url
        with pytest.raises(InputError, match="holds the log"):
            open_workspace(tmp_path / "other", database_url=url)
    else:
        with pytest.raises(InputError, match="already holds the log"):
            init_workspace(tmp_path / "other", database_url=database_url, clock=clock)
        assert not (tmp_path / "other").exists()


def test_an_unreachable_database_is_reported_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot reach database") as caught:
        init_workspace(tmp_path / "ws", database_url="postgresql://nobody@127.0.0.1:1/none")
    assert caught.value.hint
    assert "server" in caught.value.hint
    assert not (tmp_path / "ws").exists()


def test_a_database_that_goes_away_is_a_storage_error(tmp_path: Path, clock: FakeClock) -> None:
    with init_workspace(tmp_path / "ws", clock=clock) as ws:
        party = ws.register_party("Alice")
        ws.store.engine.dispose()
        for suffix in ("-wal", "-shm"):
            (tmp_path / "ws" / f"quotepart.db{suffix}").unlink(missing_ok=True)
        (tmp_path / "ws" / "quotepart.db").write_bytes(b"overwritten by something else" * 100)
        with pytest.raises(StorageError, match="database error") as caught:
            ws.append(asset_body(1), author=party)
        assert caught.value.hint is not None


def test_an_interrupted_init_is_explained(tmp_path: Path) -> None:
    (tmp_path / "ws" / "keys").mkdir(parents=True)
    (tmp_path / "ws" / "keys" / "log.key").write_bytes(b"partial")
    with pytest.raises(InputError, match="interrupted"):
        init_workspace(tmp_path / "ws")


def test_a_swapped_key_file_is_caught_before_signing(ws: Workspace) -> None:
    alice, bob = ws.register_party("Alice"), ws.register_party("Bob")
    alice_file = ws.path / "keys" / f"party-{alice.ulid}.key"
    alice_file.write_bytes((ws.path / "keys" / f"party-{bob.ulid}.key").read_bytes())
    with pytest.raises(SignatureError, match="does not hold the key the log registered"):
        ws.append(asset_body(1), author=alice)
    assert ws.store.tree_size() == 2


def test_a_nul_in_a_name_is_refused_on_every_backend_and_nothing_is_written(ws: Workspace) -> None:
    before = ws.store.tree_size()
    with pytest.raises(MalformedEntryError, match="NUL"):
        ws.register_party("Ada\x00")
    assert ws.store.tree_size() == before
    assert not list((ws.path / "keys").glob("party-*"))
