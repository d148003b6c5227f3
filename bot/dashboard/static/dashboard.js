// Review buttons without a page reload: post the form with fetch and show the verdict in place.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.classList.contains("review-form")) return;
  event.preventDefault();
  const data = new FormData(form);
  data.set("verdict", event.submitter ? event.submitter.value : "ok");
  const article = form.closest("article");
  const verdict = article.querySelector("[data-verdict]");
  verdict.textContent = "saving…";
  try {
    const response = await fetch(form.action, {
      method: "POST", body: data, headers: {"Accept": "application/json"}, credentials: "same-origin",
    });
    const answer = await response.json();
    verdict.textContent = response.ok ? answer.review : "error: " + answer.error;
    article.classList.toggle("reviewed", response.ok);
  } catch (error) {
    verdict.textContent = "error: " + error;
  }
});
