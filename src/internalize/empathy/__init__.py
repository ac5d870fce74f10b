"""The empathy study, beyond the paper: does a learnt reward model reward another agent's goal reaching, and when?

A feature package on top of the layers it uses: the matched stimuli and the empathy index (``probe``), the
instrument's data source (``data``), reward models with an explicit action mark (``reward_model``), latent
similarity (``latent``), the readings along stimulus continua (``instrument``), the study (``study``), and the
probe as a unit of one's own peer-world experiment (``unit``); its world is ``worlds.peer`` and its report section
``analysis.empathy_section``."""
