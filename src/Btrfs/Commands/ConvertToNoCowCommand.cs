namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>ConvertTo-NoCow: rewrites files into new NOCOW files and puts them in place atomically.</summary>
    [Cmdlet(VerbsData.ConvertTo, "NoCow", DefaultParameterSetName = LiteralPathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = HelpLinks.Pages + "ConvertTo-NoCow.md")]
    [OutputType(typeof(NoCowStatus))]
    public sealed class ConvertToNoCowCommand : NoCowConversionCommandBase
    {
        /// <summary>Convert a compressed file (chattr +c, or the btrfs compression property) without its compression, instead of refusing it.</summary>
        [Parameter]
        public SwitchParameter DropCompression { get; set; }

        /// <inheritdoc/>
        private protected override bool ToNoCow => true;

        /// <inheritdoc/>
        private protected override bool DropCompressionRequested => DropCompression.IsPresent;
    }
}
