namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>Remove-BtrfsSubvolume: deletes a subvolume or snapshot (SNAP_DESTROY_V2), refusing one in use.</summary>
    [Cmdlet(VerbsCommon.Remove, "BtrfsSubvolume", DefaultParameterSetName = LiteralPathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = HelpLinks.Pages + "Remove-BtrfsSubvolume.md")]
    [OutputType(typeof(BtrfsSubvolumeInfo))]
    public sealed class RemoveBtrfsSubvolumeCommand : FileCmdletBase
    {
        /// <summary>Also delete the subvolumes nested in it (deepest first); without it a subvolume with nested ones is refused.</summary>
        [Parameter]
        public SwitchParameter Recurse { get; set; }

        /// <summary>Wait until the kernel's cleaner has freed the space (SUBVOL_SYNC_WAIT), so the free space can be measured right after.</summary>
        [Parameter]
        public SwitchParameter Wait { get; set; }

        /// <summary>Write the deleted subvolumes' objects (as they were).</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            using SubvolumeRemover plan = SubvolumeRemover.Plan(path, Recurse.IsPresent);
            if (!ShouldProcess(plan.Subvolume.Path ?? path, SubvolumeRemover.Describe(plan.Subvolume, plan.Nested.Count)))
            {
                return;
            }

            plan.Run(Wait.IsPresent, deleted =>
            {
                WriteVerbose($"Deleted subvolume {deleted.Path ?? deleted.Name} (id {deleted.Id}).");
                if (PassThru.IsPresent)
                {
                    WriteObject(deleted);
                }
            }, StopToken);
        }
    }
}
