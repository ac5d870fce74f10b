"""The empathy probe, beyond the paper: does an ISR reward another agent's goal reaching, and does that change
behaviour? One feature, one package: the two-agent world (``world``), the matched stimuli and the empathy index
(``probe``), the study that runs it (``study``) and its report section (``section``)."""
