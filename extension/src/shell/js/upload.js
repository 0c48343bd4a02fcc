// Sets a file input's files from bytes the server read (base64), as a user's pick would,
// then fires input and change. `this` is the input, or a button or label that opens one:
// then the input it controls, or the one in the same form or container, is used.
function(files) {
  const isFileInput = (el) => el && el.localName === 'input' && el.type === 'file';
  let input = isFileInput(this) ? this : (isFileInput(this.control) ? this.control : null);
  for (let at = this; !input && at && at !== document.documentElement; at = at.parentElement) {
    input = at.querySelector ? at.querySelector('input[type=file]') : null;
  }
  if (!input) return { error: 'no file input here or in its form or container' };
  if (input.disabled) return { error: 'the file input is disabled' };
  if (files.length > 1 && !input.multiple) return { error: 'the file input takes one file' };
  const list = new DataTransfer();
  for (const f of files) {
    const raw = atob(f.data);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    list.items.add(new File([bytes], f.name, { type: f.mime }));
  }
  input.files = list.files;
  input.dispatchEvent(new Event('input', { bubbles: true }));
  input.dispatchEvent(new Event('change', { bubbles: true }));
  return { input: input.name || input.id || '', count: input.files.length, hidden: !input.offsetParent };
}
