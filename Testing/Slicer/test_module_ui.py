"""The panel's .ui against the module code: it parses, names match, every parameter is bound."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UI_FILE = REPO / "LNSynth" / "Resources" / "UI" / "LNSynth.ui"
MODULE_FILE = REPO / "LNSynth" / "LNSynth.py"
PANEL_JOBS_FILE = REPO / "LNSynth" / "LNSynthModuleLib" / "panel_jobs.py"   # the widget's job mixin
PANEL_RESULTS_FILE = REPO / "LNSynth" / "LNSynthModuleLib" / "panel_results.py"   # its results mixin
UNBOUND_COMBOS = {"synthesisResultComboBox"}   # lists the last synthesis' results, no parameter


def _widgets() -> dict[str, ET.Element]:
    root = ET.parse(UI_FILE).getroot()
    return {w.get("name"): w for w in root.iter("widget")}


def _module_tree() -> ast.Module:
    return ast.parse(MODULE_FILE.read_text(encoding="utf-8"))


def _parameters() -> list[str]:
    for node in ast.walk(_module_tree()):
        if isinstance(node, ast.ClassDef) and any(getattr(d, "id", None) == "parameterNodeWrapper"
                                                  for d in node.decorator_list):
            return [s.target.id for s in node.body if isinstance(s, ast.AnnAssign)]
    raise AssertionError("no @parameterNodeWrapper class in LNSynth.py")


def _ui_names_used_by_code() -> set[str]:
    """`self.ui.<name>` in the widget and its mixins, ACTION_BUTTONS, the mixins' widget-name tuples, and button
    names passed as strings."""
    names = set()
    mixins = [ast.parse(f.read_text(encoding="utf-8")) for f in (PANEL_JOBS_FILE, PANEL_RESULTS_FILE)]
    for node in [*ast.walk(_module_tree()), *(n for m in mixins for n in ast.walk(m))]:
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("startJob", "_startWith"):
            names.update(a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).endswith("Button"))
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DONE_HANDLERS" for t in node.targets):
            names.update(k.value for k in node.value.keys)
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "ui" and isinstance(node.value.value, ast.Name)
                and node.value.value.id == "self"):
            names.add(node.attr)
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) in ("ACTION_BUTTONS", "PATCH_ONLY_WIDGETS",
                                                                           "IN_CT_ONLY_WIDGETS") for t in node.targets):
            names.update(elt.value for elt in node.value.elts)
    return names


def _bound_parameters() -> dict[str, str]:
    bound = {}
    for name, widget in _widgets().items():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                assert prop.get("stdset") == "0", f"{name}: dynamic property needs stdset=0"
                bound[prop.findtext("string")] = name
    return bound


def test_ui_parses_with_a_root_widget_and_sections():
    widgets = _widgets()
    assert ET.parse(UI_FILE).getroot().find("widget").get("class") == "qMRMLWidget"
    sections = [w.findtext("property/string") for w in widgets.values() if w.get("class") == "ctkCollapsibleButton"]
    assert sections == ["Input & anatomy", "Lymph nodes", "LN-DDPM training", "Synthesis", "nnU-Net", "Advanced"]


def test_every_widget_the_code_uses_exists():
    used = _ui_names_used_by_code()
    assert len(used) >= 10
    missing = used - set(_widgets())
    assert not missing, f"LNSynth.py uses widgets missing from LNSynth.ui: {sorted(missing)}"


def test_every_parameter_is_bound_to_exactly_one_widget():
    parameters = _parameters()
    bound = _bound_parameters()
    assert len(parameters) >= 15
    assert set(parameters) == set(bound), (
        f"unbound: {sorted(set(parameters) - set(bound))}, unknown: {sorted(set(bound) - set(parameters))}")


def test_node_selectors_get_the_scene_and_choices_match_the_parameter_choices():
    root = ET.parse(UI_FILE).getroot()
    receivers = {c.findtext("receiver") for c in root.iter("connection")
                 if c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"}
    combos = {n for n, w in _widgets().items() if w.get("class") == "qMRMLNodeComboBox"}
    assert combos and combos == receivers
    from LNSynthLib.anatomy.build import ANATOMY_SOURCES
    from LNSynthLib.devices import DEVICE_CHOICES
    from LNSynthLib.diffusion.choices import BUNDLED_CONFIGS, SAMPLERS
    from LNSynthLib.diffusion.sample.inct_defaults import SYNTHESIS_MODES

    # The panel's choice lists are built from the library's registries (see LNSynth.py); the .ui lists the same.
    expected = {"sampler": ["checkpoint", *SAMPLERS], "device": list(DEVICE_CHOICES),
                "ddpmConfig": [*BUNDLED_CONFIGS, "file"], "synthesisMode": list(SYNTHESIS_MODES),
                "anatomyMethod": [s for s in ANATOMY_SOURCES if s in ("totalseg", "coarse")]}
    bound = {widget: parameter for parameter, widget in _bound_parameters().items()}
    combos = {name: w for name, w in _widgets().items() if w.get("class") == "QComboBox"}
    assert set(combos) - set(bound) == UNBOUND_COMBOS
    combos = {name: w for name, w in combos.items() if name not in UNBOUND_COMBOS}
    assert {bound[name] for name in combos} == set(expected)
    for name, widget in combos.items():
        items = [i.findtext("property/string") for i in widget.findall("item")]
        assert items == expected[bound[name]], f"{name}: .ui items {items} differ from the registry"


def test_module_file_is_thin():
    """The widget does no computation: no numpy, subprocess or file-format code in LNSynth.py."""
    imported = set()
    for node in ast.walk(_module_tree()):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"subprocess", "SimpleITK", "nibabel", "torch", "shutil"}


def test_quality_control_checkbox_is_bound_and_on_by_default():
    widget = _widgets()["qcCheckBox"]
    assert widget.get("class") == "QCheckBox"
    assert _bound_parameters()["qualityControl"] == "qcCheckBox"
    checked = next(p for p in widget.findall("property") if p.get("name") == "checked")
    assert checked.findtext("bool") == "true"
    defaults = {node.target.id: node.value for node in ast.walk(_module_tree())
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}
    assert ast.unparse(defaults["qualityControl"]) == "form.default('qualityControl')"   # the form's one declaration
    from LNSynthScene import form

    assert form.default("qualityControl") is True
    calls = [ast.unparse(node) for node in ast.walk(_module_tree()) if isinstance(node, ast.Call)
             and any(k.arg == "qc" for k in node.keywords)]
    assert len(calls) == 2 and all("qc=p.qualityControl" in c for c in calls)   # Synthesize and Export


def test_the_patch_field_is_bound_and_reaches_train_nnunet():
    """The panel's Patch (Z Y X), as the page's: bound to `nnunetPatchSize` (blank by default: nnU-Net's plan) and
    handed to the training through the form's one parser."""
    from LNSynthScene import form

    assert _widgets()["nnunetPatchLineEdit"].get("class") == "QLineEdit"
    assert _bound_parameters()["nnunetPatchSize"] == "nnunetPatchLineEdit" and form.default("nnunetPatchSize") == ""
    calls = [ast.unparse(node) for node in ast.walk(_module_tree()) if isinstance(node, ast.Call)
             and getattr(node.func, "attr", "") == "start_nnunet_train"]
    assert len(calls) == 1 and "patch_size=form.patch_size(p.nnunetPatchSize, 'nnU-Net section')" in calls[0]
