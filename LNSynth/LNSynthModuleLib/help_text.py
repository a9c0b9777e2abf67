"""The module's help and acknowledgement, as Slicer shows them at the top of the panel (HTML).

Kept apart from LNSynth.py so that the widget's file holds only the widget; plain strings, no Qt.
"""

HELP = """
Synthesize realistic abdominal CT patches with lymph nodes (LN-DDPM) and use them to train nnU-Net.
<ol>
<li><b>Input &amp; anatomy</b>: pick a CT; <i>Create anatomy</i> runs TotalSegmentator in the background (or the
weights-free coarse fallback; TotalSegmentator's weights are downloaded on first use, or imported from a zip in Advanced
without network), or group an existing TotalSegmentator file. The 14 anatomy groups appear as a
segmentation.</li>
<li><b>Lymph nodes</b>: create or pick a segmentation with a <i>lymph node</i> segment and paint existing or new
nodes in the Segment Editor.</li>
<li><b>LN-DDPM training</b>: <i>Add current case</i> prepares the CT, anatomy and lymph nodes as a training
case (10 cm around the nodes, 1 mm) in the cases folder; <i>Train LN-DDPM</i> trains the <i>tiny</i> (CPU) or
<i>paper</i> (GPU) model in the background and resumes on the next click.</li>
<li><b>Synthesis</b>: choose the LN-DDPM checkpoint, the mode and the number of samples (sampler and steps default
to the checkpoint's own), then <i>Synthesize</i>. The job runs in its own process (Cancel asks, then stops it and
leaves no partial files). <i>in-ct</i>: your CT comes back with the painted nodes synthesized into it (nothing else
changed), side by side with the original in linked views; pick another result in the list to load it. <i>patch</i>:
paper 000's synthetic patches at their physical place, optionally pasted into the CT.</li>
<li><b>nnU-Net</b>: export a dataset from real + synthetic cases, train in the background and segment lymph nodes
in the current CT.</li>
</ol>
Closing the scene, reloading the module or exiting Slicer while a job runs asks first; a stopped training keeps its
run folder and resumes on the next click. Everything is kept in the work folder shown in the panel (Documents/LNSynth
unless you choose another in Advanced; remembered in Slicer's settings).
The same steps run headless: <code>PythonSlicer &lt;extension&gt;/lib/Slicer-X.Y/qt-scripted-modules/Scripts/lnsynth_headless.py run --config paper --cases ... --out ...</code> or the <code>lnsynth</code> command line.
Needs Slicer 5.10 or newer. The background jobs need PyTorch, MONAI, nnU-Net and TotalSegmentator, installed on
first use after asking; packages Slicer already has are kept as they are, except that the PyTorch extension's
installer (light-the-torch) may replace Slicer's pip with an older one: the install question says so when it does.
"""

ACKNOWLEDGEMENT = """
Implements LN-DDPM from Yongrui Yu, Hanyu Chen, Zitian Zhang, Qiong Xiao, Wenhui Lei, Linrui Dai, Yu Fu, Hui Tan,
Guan Wang, Peng Gao, Xiaofan Zhang: "CT Synthesis with Conditional Diffusion Models for Abdominal Lymph Node
Segmentation". The comparison variants (conditional, mask-guided and edge-guided DDPM) follow Yan Zhuang, Benjamin
Hou, Tejas Sudharshan Mathai, Pritam Mukherjee, Boah Kim, Ronald M. Summers: "Semantic Image Synthesis for Abdominal
CT". Uses TotalSegmentator, MONAI and nnU-Net v2.
"""
