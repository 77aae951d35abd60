namespace Btrfs.Commands
{
    using System.Collections.Generic;
    using System.Management.Automation;
    using Btrfs.Core;

    /// <summary>
    /// Get-BtrfsSubvolume: the subvolume holding a path; with -Recurse also every subvolume below it
    /// (no privilege needed); with -All every subvolume of the filesystem (root).
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "BtrfsSubvolume", DefaultParameterSetName = LiteralPathSet, HelpUri = HelpLinks.Pages + "Get-BtrfsSubvolume.md")]
    [OutputType(typeof(BtrfsSubvolumeInfo))]
    public sealed class GetBtrfsSubvolumeCommand : FileCmdletBase
    {
        /// <summary>Also every subvolume below each path (nested subvolumes and snapshots reached through it).</summary>
        [Parameter]
        public SwitchParameter Recurse { get; set; }

        /// <summary>Every subvolume of the filesystem holding each path, as `btrfs subvolume list` (root only).</summary>
        [Parameter]
        public SwitchParameter All { get; set; }

        /// <summary>Each input asks its own question; with -Recurse or -All each subvolume is written once per pipeline (<see cref="written"/>).</summary>
        protected override bool EachFileOncePerPipeline => false;

        /// <summary>The subvolumes with a path -Recurse or -All wrote so far in this pipeline, by UUID, id and path.</summary>
        private readonly HashSet<(System.Guid Uuid, ulong Id, string Where)> written = new();

        /// <inheritdoc/>
        protected override void BeginProcessing()
        {
            if (Recurse.IsPresent && All.IsPresent)
            {
                ThrowTerminatingError(ErrorRecords.ConflictingParameters("RecurseWithAll", "-All lists every subvolume of the filesystem and -Recurse those below the path. Use one of them."));
            }
        }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            SubvolumeScope scope = All.IsPresent ? SubvolumeScope.All : Recurse.IsPresent ? SubvolumeScope.Below : SubvolumeScope.Self;
            List<BtrfsSubvolumeInfo> listed = SubvolumeLister.List(path, scope, out List<ulong> unreached, out UnreachedKinds kinds);
            foreach (BtrfsSubvolumeInfo subvolume in listed)
            {
                // With -Recurse or -All, once per pipeline, as a walk's files are: walks of overlapping trees (., ./snapshots)
                // wrote the subvolumes below both twice (a hostile test). By its path: the same subvolume reached through
                // another mount is written for each place, and one no mount reaches (no path; clones and old filesystems
                // share UUIDs and ids: a review) is never taken for another. Without them each path gets its answer, as
                // Test-Path gives one.
                if (scope == SubvolumeScope.Self || subvolume.Path is not string at || written.Add((subvolume.Uuid, subvolume.Id, at)))
                {
                    WriteObject(subvolume);
                }
                else
                {
                    WriteVerbose($"Subvolume {subvolume.Id} ('{subvolume}') was written earlier in this pipeline: not again.");
                }
            }

            if (unreached.Count > 0)
            {
                WriteWarning($"{unreached.Count} subvolume(s) below '{path}' could not be listed: {SubvolumeLister.WhyUnreached(unreached, kinds, path)}. As root, Get-BtrfsSubvolume -All lists every subvolume.");
            }
        }
    }
}
