
  Welcome to @CLUSTER@-login (minihpc, an ARC-like HPC service)

  Do not run heavy work here: each process may use at most @CPU@ minutes of CPU time.
  Submit jobs with sbatch, or work interactively with: srun -p interactive --pty /bin/bash
  Storage: $HOME (your files), $DATA (your project's area), /scratch; see myquota and mybalance.

