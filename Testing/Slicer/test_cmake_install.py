"""LNSynth/CMakeLists.txt configures, builds and installs LNSynthLib and LNSynthScene next to the module.

No Slicer build is available in CI, so Slicer's macros are replaced by stubs that copy and
install exactly what they are given (as slicerMacroBuildScriptedModule does, relative to the
module folder) and fail on a missing file as the real macro does.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from LNSynthLib.cli.bench_command import shipped_bench_files

REPO = Path(__file__).resolve().parents[2]

STUB_PROJECT = r"""
cmake_minimum_required(VERSION 3.16)
project(LNSynthCMakeCheck NONE)
set(Slicer_QTSCRIPTEDMODULES_LIB_DIR lib/Slicer/qt-scripted-modules)
set(Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR ${Slicer_QTSCRIPTEDMODULES_LIB_DIR})
set(BUILD_TESTING OFF)
macro(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(MY "WITH_GENERIC_TESTS" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
  foreach(f ${MY_SCRIPTS} ${MY_RESOURCES})
    if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${f})
      message(FATAL_ERROR "slicerMacroBuildScriptedModule given nonexistent file '${f}'")
    endif()
    get_filename_component(d ${f} DIRECTORY)
    file(COPY ${CMAKE_CURRENT_SOURCE_DIR}/${f} DESTINATION ${CMAKE_BINARY_DIR}/${Slicer_QTSCRIPTEDMODULES_LIB_DIR}/${d})
  endforeach()
  # ctkMacroCompilePythonScript (CTK 868d56c7, CMake/ctkMacroCompilePythonScript.cmake:104-106) installs the
  # whole build folder of the scripted modules, with everything copied into it.
  install(DIRECTORY ${CMAKE_BINARY_DIR}/${Slicer_QTSCRIPTEDMODULES_LIB_DIR}/
          DESTINATION ${Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR} USE_SOURCE_PERMISSIONS)
endmacro()
add_subdirectory(@MODULE_DIR@ LNSynth)
"""


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_module_and_library_install_side_by_side(tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(STUB_PROJECT.replace("@MODULE_DIR@", str(REPO / "LNSynth")))
    build, prefix = tmp_path / "build", tmp_path / "install"
    for cmd in (["cmake", "-S", str(project), "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={prefix}"],
                ["cmake", "--build", str(build)], ["cmake", "--install", str(build)]):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    for root in (build, prefix):
        modules = root / "lib" / "Slicer" / "qt-scripted-modules"
        assert (modules / "LNSynth.py").is_file()
        # every module file the panel imports, so a new one cannot be left out of CMakeLists.txt
        for source in sorted((REPO / "LNSynth" / "LNSynthModuleLib").glob("*.py")):
            assert (modules / "LNSynthModuleLib" / source.name).is_file(), f"{root.name}: {source.name} not installed"
        # the scene package shared with the web page, the web app included, as it is in the source tree
        for source in sorted((REPO / "LNSynthScene").rglob("*.py")):
            relative = source.relative_to(REPO)
            assert (modules / relative).is_file(), f"{root.name}: {relative} not installed"
        assert (modules / "LNSynthScene" / "web" / "app.py").is_file()
        assert (modules / "Resources" / "UI" / "LNSynth.ui").is_file()
        for name in ("__init__.py", "requirements.txt", "jobs/runner.py", "jobs/chain.py", "cli/main.py",
                     "anatomy/label_groups.json", "anatomy/totalseg_classes.json", "diffusion/configs/tiny.yaml"):
            assert (modules / "LNSynthLib" / name).is_file(), f"{root.name}: LNSynthLib/{name} missing"
    # The job runner puts the folder above LNSynthLib on PYTHONPATH: next to the module, as in the source tree.
    installed = prefix / "lib" / "Slicer" / "qt-scripted-modules"
    runner = installed / "LNSynthLib" / "jobs" / "runner.py"
    assert runner.resolve().parents[2] == installed.resolve()
    assert not list(installed.rglob("__pycache__"))
    # the research experiments stay in the repository: not in the extension, not under the library's bench/
    assert not list(installed.rglob("experiments"))
    shipped_bench = {p.name for p in (installed / "LNSynthLib" / "bench").glob("*.py")}
    assert shipped_bench <= shipped_bench_files(), sorted(shipped_bench - shipped_bench_files())
