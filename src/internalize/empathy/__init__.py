"""The empathy probe, beyond the paper: does an ISR reward another agent's goal reaching, and does that change
behaviour? A feature package on top of the layers it uses: the matched stimuli and the empathy index (``probe``),
the probe as a unit of an experiment (``unit``) and the study that runs it (``study``); its world is
``worlds.peer`` and its report section ``analysis.empathy_section``."""
