"""The web session's actions on a real slicer-core scene, without a browser or trame (seconds).

The browser test drives the same actions through the page; this keeps them covered where the web
extra or Chromium is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.anatomy.groups import LYMPH_NODE_SEGMENT_NAME
from LNSynthLib.errors import InputDataError
from LNSynthLib.phantom import generate_phantom
from LNSynthLib.volumes.io import write_volume

pytest.importorskip("slicer", reason="slicer-core is not installed (pip install slicer-core)")

from LNSynthModuleLib import mrml_bridge as mb  # noqa: E402
from LNSynthModuleLib.web.session import WebSession, new_session_folder  # noqa: E402


@pytest.fixture
def phantom_files(tmp_path: Path) -> dict[str, Path]:
    phantom = generate_phantom(seed=1, shape_zyx=(32, 48, 48))
    paths = {"ct": tmp_path / "data" / "ct.nii.gz", "totalseg": tmp_path / "data" / "totalseg.nii.gz"}
    write_volume(phantom.ct, paths["ct"])
    write_volume(phantom.totalseg, paths["totalseg"])
    return paths


def test_session_folders_are_never_shared(tmp_path: Path):
    folders = {new_session_folder(tmp_path) for _ in range(5)}
    assert len(folders) == 5 and all(f.is_dir() and f.parent == tmp_path for f in folders)


def test_session_actions_on_a_scene(tmp_path: Path, phantom_files: dict[str, Path]):
    core = mb.create_core_scene()
    session = WebSession(core.scene, tmp_path / "work", data_roots=[tmp_path / "data"])
    with pytest.raises(InputDataError, match="no CT loaded"):
        session.lymph_node_segment()
    with pytest.raises(InputDataError, match="not found"):
        session.load_ct(tmp_path / "missing.nii.gz")

    ct_node = session.load_ct(phantom_files["ct"])
    assert ct_node.GetName() == "ct" and session.painted_voxels() == 0
    with pytest.raises(InputDataError, match="no anatomy"):
        session.require_inputs()
    anatomy = session.anatomy_from_totalseg_file(phantom_files["totalseg"])
    node, segment_id = session.lymph_node_segment()
    assert session.lymph_node_segment() == (node, segment_id)  # the same node on the next click
    ct = mb.node_to_volume(ct_node)
    assert session.logic.add_sphere(node, ct_node, tuple(ct.geometry.index_to_physical(np.array([24.0, 24, 16]))),
                                    3.0) > 0
    assert session.painted_voxels() == int(mb.segment_to_mask(node, LYMPH_NODE_SEGMENT_NAME, ct).array.sum()) > 0
    assert session.require_inputs() == (ct_node, anatomy, node)

    rows = {row["name"]: row for row in session.scene_rows()}
    assert rows["ct"]["kind"] == "volume" and rows["ct"]["detail"] == "48×48×32"
    assert rows["ct lymph nodes"]["detail"] == LYMPH_NODE_SEGMENT_NAME
    assert "liver" in rows["ct anatomy"]["detail"]

    with pytest.raises(InputDataError, match="not allowed or not found"):
        from LNSynthModuleLib.logic import SynthesisSettings

        session.start_synthesis(SynthesisSettings(tmp_path / "none.pt"))
    with pytest.raises(InputDataError, match="no nnU-Net model"):
        session.start_nnunet_predict(None, "cpu")
    core.scene.Clear(1)


def test_uploads_and_paths_through_the_session(tmp_path: Path, phantom_files: dict[str, Path]):
    """A hostile upload name writes inside the session's uploads only; a rejected upload leaves nothing."""
    core = mb.create_core_scene()
    session = WebSession(core.scene, tmp_path / "work", max_upload_bytes=2**20)
    other = WebSession(core.scene, tmp_path / "work")
    content = phantom_files["ct"].read_bytes()
    node = session.load_upload([{"name": "../../../../ct.nii.gz", "content": content}])
    assert node.GetName() == "ct" and not (tmp_path / "ct.nii.gz").exists()
    assert [p.name for p in session.upload_folder.iterdir()] == ["ct.nii.gz"]
    with pytest.raises(InputDataError, match="cannot be read|not"):
        other.load_upload([{"name": str(tmp_path / "notes.txt"), "content": b"not a volume"}])
    assert not (tmp_path / "notes.txt").exists() and not other.upload_folder.exists()
    with pytest.raises(InputDataError, match="over this server's limit"):
        session.load_upload([{"name": "big.nii.gz", "content": b"\0" * (2**20 + 1)}])
    assert [p.name for p in session.upload_folder.iterdir()] == ["ct.nii.gz"]
    # Another session's upload and the data next to the work folder are out of reach by path.
    for text in (str(session.upload_folder / "ct.nii.gz"), f"../{session.folder.name}/uploads/ct.nii.gz",
                 str(phantom_files["ct"])):
        with pytest.raises(InputDataError, match="not allowed or not found"):
            other.load_ct(text)
    core.scene.Clear(1)
