# minihpc: Lmod's `module` and `ml` in every bash.
#   login shells          Debian's /etc/profile.d/lmod.sh (MODULEPATH from /etc/lmod/modulespath,
#                         BASH_ENV=/usr/share/lmod/lmod/init/bash, exported shell functions)
#   interactive shells,   this file, sourced from the top of /etc/bash.bashrc (bash reads that
#   `ssh host command`    file for commands run by sshd too)
#   batch scripts,        BASH_ENV and the exported functions arrive with the job's environment
#   srun steps            (--export=ALL); a `#!/bin/bash -l` script gets the login setup as well
if ! declare -F module >/dev/null 2>&1; then
    . /etc/profile.d/lmod.sh
fi
