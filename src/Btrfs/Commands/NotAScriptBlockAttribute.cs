namespace Btrfs.Commands
{
    using System.Management.Automation;

    /// <summary>
    /// Refuses a script block given to a string parameter that does not run one per piped object. PowerShell would
    /// otherwise bind the block's source text as the value: `-Destination { $_.Name + '.bak' }` made a file named
    /// " $_.Name + '.bak' ".
    /// </summary>
    internal sealed class NotAScriptBlockAttribute : ArgumentTransformationAttribute
    {
        private readonly string instead;

        /// <summary>Names what to do instead, for the message.</summary>
        internal NotAScriptBlockAttribute(string instead) => this.instead = instead;

        /// <inheritdoc/>
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            object value = inputData is PSObject wrapped ? wrapped.BaseObject : inputData;
            bool block = value is ScriptBlock;
            if (value is object[] many)
            {
                foreach (object? item in many)
                {
                    block |= (item is PSObject p ? p.BaseObject : item) is ScriptBlock;
                }
            }

            if (block)
            {
                throw new ArgumentTransformationMetadataException("A script block is not run here, once per piped object; its text would have been taken as the path. " + instead);
            }

            return inputData;
        }
    }
}
