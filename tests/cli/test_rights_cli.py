"""The rights commands: delegate and revoke, claims, proposed contributions, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from quotepart.cli import cli
from quotepart.workspace import open_workspace


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


class Shell:
    """A workspace with a lab's model, a hospital's dataset, and a valuer and a rival."""

    def __init__(self, folder: Path, tmp_path: Path) -> None:
        self.folder = folder
        self.ws = ["--workspace", str(folder)]
        self.lab = self.ok("party", "add", "Lab", "--role", "operator")
        self.hospital = self.ok("party", "add", "Hospital")
        self.valuer = self.ok("party", "add", "Valuer Co")
        self.rival = self.ok("party", "add", "Rival")
        self.data_file = tmp_path / "records.bin"
        self.data_file.write_bytes(b"records")
        self.data = self.ok(
            "asset", "add", str(self.data_file), "--name", "records", "--by", self.hospital
        )
        weights = tmp_path / "weights.bin"
        weights.write_bytes(b"weights")
        self.model = self.ok(
            "asset", "add", str(weights), "--name", "model", "--kind", "model", "--by", self.lab
        )

    def ok(self, *args: str) -> str:
        result = run(*args, *self.ws)
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    def tree_size(self) -> int:
        with open_workspace(self.folder) as ws:
            return ws.store.tree_size()


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    folder = tmp_path / "ws"
    assert run("init", str(folder)).exit_code == 0
    return Shell(folder, tmp_path)


def test_grant_list_show_and_revoke_a_delegation(shell: Shell) -> None:
    granted = shell.ok(
        "right", "grant", "Valuer Co", "valuation", "model", "--by", "Lab",
        "--until", "2030-01-01",
    )  # fmt: skip
    assert granted.isdigit()
    listed = shell.ok("right", "list")
    assert "Valuer Co may sign valuation of model, delegated by Lab" in listed
    assert "until 2030-01-01T00:00:00+00:00" in listed
    [row] = json.loads(shell.ok("right", "list", "model", "--json"))
    assert (row["grantee"], row["grantor"], row["right"]) == (shell.valuer, shell.lab, "valuation")
    assert row["leaf_index"] == int(granted)
    shown = json.loads(shell.ok("asset", "show", "model"))
    assert [d["grantee_name"] for d in shown["delegations"]] == ["Valuer Co"]
    assert shown["registered_by"]["name"] == "Lab"
    with open_workspace(shell.folder) as ws:  # the delegation is the workspace's too
        assert [str(d.grantee) for d in ws.delegations(active=True)] == [shell.valuer]
    revoked = shell.ok("right", "revoke", "Valuer Co", "valuation", "model", "--by", "Lab")
    assert int(revoked) > int(granted)
    assert shell.ok("right", "list") == ""
    assert f"revoked at entry {revoked}" in shell.ok("right", "list", "--all")
    assert json.loads(shell.ok("asset", "show", "model"))["delegations"] == []


def test_a_refused_grant_prints_the_rule_and_the_hint_and_writes_nothing(shell: Shell) -> None:
    size = shell.tree_size()
    refused = run("right", "grant", "Rival", "policy", "model", "--by", "Valuer Co", *shell.ws)
    assert refused.exit_code == 2
    assert "Error:" in refused.stderr
    assert "(rule: " in refused.stderr
    assert "Hint:" in refused.stderr
    assert "Traceback" not in refused.output
    assert shell.tree_size() == size


def test_a_refused_revocation_writes_nothing(shell: Shell) -> None:
    shell.ok("right", "grant", "Valuer Co", "valuation", "model", "--by", "Lab")
    size = shell.tree_size()
    refused = run("right", "revoke", "Valuer Co", "valuation", "model", "--by", "Rival", *shell.ws)
    assert refused.exit_code == 2, refused.output
    assert "(rule: " in refused.stderr
    assert "Hint:" in refused.stderr
    assert shell.tree_size() == size


def test_bad_until_and_unknown_right_are_input_errors(shell: Shell) -> None:
    bad = run(
        "right", "grant", "Valuer Co", "valuation", "model", "--by", "Lab", "--until", "soon",
        *shell.ws,
    )  # fmt: skip
    assert bad.exit_code == 2
    assert "ISO 8601" in bad.stderr
    unknown = run("right", "grant", "Valuer Co", "owning", "model", "--by", "Lab", *shell.ws)
    assert unknown.exit_code == 2


def test_registering_content_registered_first_names_who_and_how_to_claim(shell: Shell) -> None:
    size = shell.tree_size()
    again = run("asset", "add", str(shell.data_file), "--name", "mine", "--by", "Rival", *shell.ws)
    assert again.exit_code == 2
    assert "Traceback" not in again.output
    assert again.stdout == ""
    assert "registered first by Hospital" in again.stderr
    assert "nothing was recorded in the name of Rival" in again.stderr
    assert (
        f"Hint: use the asset by its digest; to dispute the registration, file a claim: "
        f"quotepart asset claim {shell.data} --reason TEXT --by {shell.rival}" in again.stderr
    )
    assert shell.tree_size() == size
    # the same content by its registrant is still the same asset, nothing written
    assert shell.ok("asset", "add", str(shell.data_file), "--name", "x", "--by", "Hospital") == (
        shell.data
    )


def test_a_claim_is_filed_and_shown_on_the_asset(shell: Shell) -> None:
    filed = shell.ok(
        "asset", "claim", shell.data, "--reason", "we collected these records", "--by", "Rival"
    )
    shown = json.loads(shell.ok("asset", "show", "records"))
    assert shown["claims"] == [
        {
            "claimant": shell.rival,
            "claimant_name": "Rival",
            "reason": "we collected these records",
            "leaf_index": int(filed),
        }
    ]
    empty = run("asset", "claim", "records", "--reason", "  ", "--by", "Rival", *shell.ws)
    assert empty.exit_code == 2
    assert "needs a reason" in empty.stderr


def test_a_proposed_contribution_is_listed_then_accepted_by_the_registrant(shell: Shell) -> None:
    shell.ok("contribute", "records", "--party", "Rival=1/4", "--role", "data", "--by", "Rival")
    [proposal] = json.loads(shell.ok("contribution", "proposals", "records", "--json"))
    assert (proposal["party_name"], proposal["share"], proposal["role"]) == ("Rival", "1/4", "data")
    assert "Rival proposes 1/4 of records as data" in shell.ok("contribution", "proposals")
    size = shell.tree_size()
    refused = run("contribution", "accept", str(proposal["leaf_index"]), "--by", "Rival", *shell.ws)
    assert refused.exit_code == 2, refused.output
    assert "(rule: contribution)" in refused.stderr
    assert "Hint:" in refused.stderr
    assert shell.tree_size() == size
    accepted = shell.ok("contribution", "accept", proposal["entry"], "--by", "Hospital")
    assert int(accepted) == size
    assert shell.ok("contribution", "proposals") == ""
    assert "accepted at entry" in shell.ok("contribution", "proposals", "--all")
    missing = run("contribution", "accept", "999", "--by", "Hospital", *shell.ws)
    assert missing.exit_code == 4
    assert "contribution proposals" in missing.stderr
