// The demo IdP's HTTP-POST binding: submit the signed response to the dashboard's ACS.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-autopost]");
  if (form) form.submit();
});
