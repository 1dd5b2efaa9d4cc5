// Whether this process was started by an MPI launcher (mpirun/mpiexec, Slurm's srun, a
// PMIx launcher) and so has peers, or is a plain process, which is a job of one rank.
//
// This is decided from the environment a launcher gives each rank, before MPI is touched,
// because a plain process must not initialise MPI at all: Open MPI 4.1 can run a
// "singleton" (MPI_Init without mpirun), but it then forks an orted daemon and sets up
// its PMIx server first, which costs a few hundred milliseconds at start, leaves a
// session directory in /tmp, and fails outright in some sandboxes. A one-rank job needs
// none of it.
#pragma once

#include <string_view>

namespace attnlab::distributed {

// True when one of the variables that MPI launchers set for each rank is present:
// OMPI_COMM_WORLD_SIZE (Open MPI's mpirun), PMIX_RANK (PMIx launchers, Open MPI 4+ and
// srun --mpi=pmix), PMI_SIZE (MPICH's Hydra, srun --mpi=pmi2).
bool StartedByMpiLauncher();

// Whether an environment entry ("NAME=value") is one an MPI launcher set for this rank
// (OMPI_*, PMIX_*, PMI_*). A process a rank starts on its own (e.g. a study's training
// run) must not inherit them: it would take itself for a rank of the job.
bool IsMpiLauncherVariable(std::string_view entry);

}  // namespace attnlab::distributed
