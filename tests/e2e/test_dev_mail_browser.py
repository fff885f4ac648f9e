"""The headless Chromium fixture against a running platform: the development mail page renders,
with what a mail contains shown as text, and screenshots land in tests/artifacts/."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from authpi.web.mail import MailMessage

PNG = b"\x89PNG\r\n\x1a\n"


async def test_browser_opens_dev_mail_and_saves_a_screenshot(platform, browser):
    to = "browser-check@example.test"
    subject = "Verify <your> email & sign in"
    await platform.handle.rt.mailer.send(
        MailMessage(
            to=to, subject=subject,
            text="Welcome!\n\nConfirm your address: https://idp.example.test/iss_x/verify-email?token=abc",
            html="<h1>Welcome!</h1><p>Confirm your address.</p>",
        )
    )  # fmt: skip
    await browser.get(f"{platform.api_url}/dev/mail?to={to}")

    def page(driver):
        [heading] = driver.find_elements(By.CSS_SELECTOR, "article h2")
        link = driver.find_element(By.CSS_SELECTOR, "article pre a")
        driver.find_element(By.CSS_SELECTOR, "details summary").click()
        return driver.title, heading.text, link.get_attribute("href")

    title, heading, href = await browser.run(page)
    assert title == "AuthPI development mail"
    assert heading == subject
    assert href == "https://idp.example.test/iss_x/verify-email?token=abc"
    shot = await browser.screenshot("dev-mail")
    assert shot.parent.name == "artifacts" and shot.parent.parent.name == "tests"
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 5_000
